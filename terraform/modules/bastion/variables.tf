variable "name" {
  description = "Name prefix (e.g. aidetect-staging)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_id" {
  description = "A private subnet (reaches SSM through the NAT gateway)."
  type        = string
}

variable "cluster_security_group_id" {
  description = "The EKS cluster security group, which guards the private API endpoint."
  type        = string
}

variable "instance_type" {
  description = "Instance type: the host only forwards TCP."
  type        = string
  default     = "t3.micro"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
