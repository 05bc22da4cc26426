# TLS and a name for the serving gateway: an ACM certificate for the predictor's hostname, validated through
# the Route 53 zone. The internal NLB in front of the Istio gateway terminates TLS with it (ansible/roles/istio);
# the hostname's record, pointing at that NLB, is written by Ansible once the load balancer exists.
resource "aws_acm_certificate" "this" {
  domain_name       = var.hostname
  validation_method = "DNS"
  tags              = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# Keyed by the hostname (known at plan), not by domain_validation_options (known only after the certificate).
resource "aws_route53_record" "validation" {
  for_each        = toset([var.hostname])
  zone_id         = var.route53_zone_id
  name            = one([for o in aws_acm_certificate.this.domain_validation_options : o.resource_record_name if o.domain_name == each.key])
  type            = one([for o in aws_acm_certificate.this.domain_validation_options : o.resource_record_type if o.domain_name == each.key])
  records         = [one([for o in aws_acm_certificate.this.domain_validation_options : o.resource_record_value if o.domain_name == each.key])]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}
