

# Leading comment about the file.
variable "region" {
  default     = "eu-west-1" # the default region
  description = "Where to deploy"
}



resource "aws_instance" "web" {

  ami           = "ami-123" // pinned
  instance_type = var.size
  count         = 2

  /* A block comment
     spanning lines */
  tags = {
    Name        = "web-${count.index}"
    Environment = "prod"
  }
  user_data = <<-EOT
    #!/bin/sh
      echo "hello"   
    EOT
  lifecycle {
    create_before_destroy = true

  }
}

locals {
  list = [
    1,
    2, # two
  ]
  merged = merge(var.a, {
    b = 1
  })
  raw = <<EOT
  keep   this
EOT
  x   = 1
}
