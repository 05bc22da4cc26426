variable "hostname" {
  description = "The predictor's hostname (e.g. detect.staging.example.com): the certificate's name, the gateway's host."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z]{2,}$", var.hostname)) && !startswith(var.hostname, "*")
    error_message = "hostname must be one DNS name, no wildcard."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone that holds hostname (certificate validation and the gateway's record)."
  type        = string

  validation {
    condition     = can(regex("^Z[A-Z0-9]{1,32}$", var.route53_zone_id))
    error_message = "route53_zone_id must be a Route 53 hosted zone id (Z...)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
