# The runbook's Kubernetes half: the web deployment, an autoscaling/v2 HPA
# (min 2, max 10, CPU 70 %, memory 80 %) that owns its replica count, and
# two scale schedules: down to 2 at 18:00 on weekdays, up to 6 at 07:00.
# With the HPA in place the schedules patch its minReplicas (the HPA would
# undo a direct scale), and plans show the value of the schedule that fired
# last: `plan --at 2026-12-01T18:30:00Z` keeps the evening's 2.
# Declared only when kubeconfig is set, so the rest of the example still
# validates and plans without a cluster; scripts/demo sets it from
# scripts/servers/kube-apiserver.sh (HIMAPLAN_VAR_kubeconfig).

variable "kubeconfig" {
  type        = string
  default     = ""
  description = "kubeconfig of the cluster; empty leaves Kubernetes out"
}

variable "kube_namespace" {
  type    = string
  default = "default"
}

variable "web_image" {
  type    = string
  default = "registry.example/himalytix/web:2026.11.1"
}

locals {
  kube_count = var.kubeconfig == "" ? 0 : 1
}

provider "kubernetes" {
  config_path = var.kubeconfig
}

resource "kubernetes_deployment" "web" {
  count          = local.kube_count
  namespace      = var.kube_namespace
  name           = "web"
  image          = var.web_image
  replicas       = 4
  cpu_request    = "250m"
  memory_request = "256Mi"
  memory_limit   = "512Mi"
  port           = 8000
  labels         = { app = "himalytix", tier = "web" }
}

resource "kubernetes_hpa" "web" {
  count              = local.kube_count
  namespace          = var.kube_namespace
  name               = "web"
  target             = "web"
  min_replicas       = 2
  max_replicas       = 10
  cpu_utilization    = 70
  memory_utilization = 80
}

resource "kubernetes_scale_schedule" "evening" {
  count     = local.kube_count
  namespace = var.kube_namespace
  name      = "web-scale-down"
  target    = "web"
  schedule  = "0 18 * * 1-5"
  time_zone = "UTC"
  replicas  = 2
}

resource "kubernetes_scale_schedule" "morning" {
  count     = local.kube_count
  namespace = var.kube_namespace
  name      = "web-scale-up"
  target    = "web"
  schedule  = "0 7 * * *"
  time_zone = "UTC"
  replicas  = 6
}
