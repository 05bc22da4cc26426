output "certificate_arn" {
  description = "Validated ACM certificate for the gateway's TLS listener."
  value       = aws_acm_certificate_validation.this.certificate_arn
}

output "hostname" {
  description = "The predictor's hostname."
  value       = var.hostname
}

output "route53_zone_id" {
  description = "Zone Ansible writes the gateway's record into."
  value       = var.route53_zone_id
}
