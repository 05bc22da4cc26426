# Shared by every environment (envs/<env>/*.tf link here); each env differs only by its terraform.tfvars
# and backend.hcl. State: S3 with native lockfile locking (Terraform >= 1.10), encrypted.
terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # Partial configuration: bucket, key and region come from backend.hcl (terraform init -backend-config=backend.hcl).
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      "aidetect.io/project" = "aidetect"
      "aidetect.io/repo"    = "terraform/envs/${var.environment}"
    }
  }
}
