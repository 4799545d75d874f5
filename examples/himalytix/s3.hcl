# The runbook's backup rule: PostgreSQL dumps under postgres/ in the
# himalytix-backups bucket are deleted after 30 days, replacing the
# lifecycle rule once put by hand with `aws s3api
# put-bucket-lifecycle-configuration`. The whole lifecycle configuration is
# put at once; removing the resource deletes it. The endpoint comes from
# AWS_ENDPOINT_URL (moto in scripts/demo).

variable "backup_retention_days" {
  type        = number
  default     = 30
  description = "days a PostgreSQL backup is kept"
}

resource "aws_s3_bucket" "backups" {
  bucket = "himalytix-backups"
}

resource "aws_s3_bucket_lifecycle" "backups" {
  bucket = aws_s3_bucket.backups.bucket

  rule "delete-old-backups" {
    prefix          = "postgres/"
    expiration_days = var.backup_retention_days
  }
}
