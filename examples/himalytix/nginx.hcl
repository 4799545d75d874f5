# The nginx upstream in front of the Django web tier, kept in line with the
# web instances: `server IP:8000 max_fails=3 fail_timeout=30s` per instance.
# A resize drains each instance out of it before the stop and puts it back
# once it runs; a scale-down removes instances from it before they are
# terminated, a scale-up adds them once they run. Declared only when
# nginx_upstream_file is set; scripts/demo sets the variables below.

variable "nginx_upstream_file" {
  type        = string
  default     = ""
  description = "the include file holding the upstream block; empty leaves nginx out"
}

variable "nginx_conf" {
  type        = string
  default     = "/etc/nginx/nginx.conf"
  description = "the running nginx's main configuration (-c)"
}

variable "nginx_prefix" {
  type        = string
  default     = "/etc/nginx"
  description = "the running nginx's prefix (-p)"
}

variable "nginx_bin" {
  type    = string
  default = "nginx"
}

resource "nginx_upstream" "web" {
  count        = var.nginx_upstream_file == "" ? 0 : 1
  config_file  = var.nginx_upstream_file
  name         = "web_backend"
  method       = "least_conn"
  servers      = [for ip in module.web.private_ips : "${ip}:8000"]
  max_fails    = 3
  fail_timeout = "30s"
  nginx_conf   = var.nginx_conf
  nginx_prefix = var.nginx_prefix
  nginx_bin    = var.nginx_bin
}

# The upstream is counted (0 or 1), so its servers are flattened into one
# list: `[for u in nginx_upstream.web : u.servers]` alone is a list of lists.
output "nginx_upstream_servers" {
  value = flatten([for u in nginx_upstream.web : u.servers])
}
