output "instance_id" {
  description = "Target of `aws ssm start-session` (port forwarding to the EKS API endpoint)."
  value       = aws_instance.this.id
}
