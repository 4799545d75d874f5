# Himalytix ERP: the web tier on EC2, and a record of the release being run.
# Scale by changing web_count; resize by changing web_instance_type.

himaplan {
  state = "state/himalytix.json"
}

variable "web_count" {
  type    = number
  default = 3
}

variable "web_instance_type" {
  type    = string
  default = "t3.small"
}

variable "ami" {
  type    = string
  default = "ami-03cf127a"
}

variable "release" {
  type    = string
  default = "2026.11.1"
}

provider "aws" {
  region = "us-east-1"
}

module "web" {
  source          = "../../modules/web_tier"
  name            = "himalytix-web"
  instance_count  = var.web_count
  instance_type   = var.web_instance_type
  ami             = var.ami
  max_unavailable = 1
}

resource "himaplan_data" "release" {
  input = {
    version  = var.release
    web_ips  = module.web.private_ips
    upstream = [for ip in module.web.private_ips : "${ip}:8000"]
  }
}

output "web_private_ips" {
  value = module.web.private_ips
}

output "upstream" {
  value = himaplan_data.release.output.upstream
}
