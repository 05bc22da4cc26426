# terraform init -backend-config=backend.hcl  (the bucket comes from terraform/bootstrap's output)
bucket = "aidetect-tfstate-REPLACE_WITH_ACCOUNT_ID"
key    = "staging/terraform.tfstate"
region = "us-east-1"
