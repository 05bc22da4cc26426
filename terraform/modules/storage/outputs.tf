output "bucket_names" {
  description = "Bucket names by purpose: datasets, artifacts, inference-logs."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "bucket_arns" {
  description = "Bucket ARNs by purpose."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "access_logs_bucket" {
  description = "Bucket receiving S3 server access logs."
  value       = aws_s3_bucket.access_logs.bucket
}
