# A fleet of identical EC2 web instances for the Django tier.

variable "name" {
  type        = string
  description = "Prefix of the instances' Name tags"
}

variable "instance_count" {
  type    = number
  default = 2

  validation {
    condition     = var.instance_count >= 0 && var.instance_count <= 50
    error_message = "instance_count must be between 0 and 50."
  }
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "ami" {
  type = string
}

variable "max_unavailable" {
  type    = any
  default = 1
}

resource "aws_instance" "this" {
  count         = var.instance_count
  ami           = var.ami
  instance_type = var.instance_type

  tags = {
    Name = format("%s-%02d", var.name, count.index + 1)
    Tier = "web"
  }

  rollout {
    max_unavailable = var.max_unavailable
  }
}

output "private_ips" {
  value = aws_instance.this[*].private_ip
}

output "ids" {
  value = aws_instance.this[*].id
}
