# The Docker side of Himalytix: the Django web tier and the Celery workers
# as the compose project "himalytix", replacing
# `docker-compose up -d --scale web=4` / `--scale celery=6` and the limits
# edited in docker-compose.yml. Containers are named himalytix-web-1..N and
# carry compose's labels, so a stack `docker compose` started is recognised.
#
# Scale with web_replicas / celery_replicas; cpus and memory change live
# (no restart); a command change recreates the containers, at most
# max_unavailable at a time. The daemon comes from DOCKER_HOST (the demo's
# private dockerd, started by scripts/demo-docker.sh).
#
# The image is the tiny busybox one scripts/servers/dockerd.sh builds
# locally (no registry is reachable), so the commands below stand in for
# gunicorn and celery: they print the real command line and then wait,
# exiting at once on SIGTERM so rollouts do not wait for Docker's 10 s stop
# timeout. The daemon has no bridge network (traffic to private ranges is
# forbidden on these machines): web shares the host's network, celery has
# none. Nothing listens.

variable "docker_image" {
  type        = string
  default     = "himaplan/busybox:1"
  description = "the image of web and celery; himaplan does not pull, it must be on the daemon"
}

variable "web_replicas" {
  type    = number
  default = 4
}

variable "web_workers" {
  type        = number
  default     = 3
  description = "gunicorn --workers"
}

variable "web_cpus" {
  type    = number
  default = 1
}

variable "web_memory" {
  type    = string
  default = "512M"
}

variable "celery_replicas" {
  type    = number
  default = 6
}

variable "celery_concurrency" {
  type        = number
  default     = 4
  description = "celery worker --concurrency"
}

variable "celery_memory" {
  type    = string
  default = "1G"
}

provider "docker" {}

locals {
  # Waits until stopped; `exec` would make sleep PID 1, which ignores SIGTERM.
  wait_for_term = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"
}

resource "docker_service" "web" {
  project      = "himalytix"
  service      = "web"
  replicas     = var.web_replicas
  image        = var.docker_image
  command      = ["sh", "-c", "echo gunicorn himalytix.wsgi:application --bind 127.0.0.1:8000 --workers ${var.web_workers}; ${local.wait_for_term}"]
  env          = { DJANGO_SETTINGS_MODULE = "himalytix.settings.production" }
  network_mode = "host"
  cpus         = var.web_cpus
  memory       = var.web_memory

  rollout {
    max_unavailable = 1
  }
}

resource "docker_service" "celery" {
  project      = "himalytix"
  service      = "celery"
  replicas     = var.celery_replicas
  image        = var.docker_image
  command      = ["sh", "-c", "echo celery -A himalytix worker --loglevel=INFO --concurrency=${var.celery_concurrency}; ${local.wait_for_term}"]
  env          = { DJANGO_SETTINGS_MODULE = "himalytix.settings.production" }
  network_mode = "none"
  cpus         = 0.5
  memory       = var.celery_memory

  rollout {
    max_unavailable = "50%"
  }
}

output "web_containers" {
  value = [for c in docker_service.web.containers : c.name]
}

output "celery_containers" {
  value = [for c in docker_service.celery.containers : c.name]
}
