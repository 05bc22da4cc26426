# Staging: small and cheap. One NAT gateway, single-AZ database, GPU groups idle at zero nodes.
region         = "us-east-1"
aws_account_id = "111111111111" # replace with the staging account
environment    = "staging"

network = {
  vpc_cidr             = "10.40.0.0/16"
  availability_zones   = ["us-east-1a", "us-east-1b", "us-east-1c"]
  private_subnet_cidrs = ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"]
  public_subnet_cidrs  = ["10.40.96.0/22", "10.40.100.0/22", "10.40.104.0/22"]
  single_nat_gateway   = true
}

kubernetes_version = "1.33"

# The predictor's hostname (ACM certificate, gateway host) and the Route 53 zone that holds it: replace both.
serving_hostname = "detect.staging.aidetect.example.com"
route53_zone_id  = "Z0000000000EXAMPLE1"

# Who administers the cluster (EKS access entries; the creator gets no implicit admin).
cluster_admin_principal_arns = ["arn:aws:iam::111111111111:role/aidetect-platform-admin"]

system_node_group = {
  instance_types = ["m7i.xlarge"]
  min_size       = 2
  max_size       = 4
  desired_size   = 2
}

gpu_node_groups = {
  gpu-inference = {
    instance_types = ["g6.xlarge"]
    max_size       = 2
    gpus_per_node  = 1
    workload       = "inference"
  }
  gpu-training-spot = {
    instance_types = ["g6.2xlarge", "g5.2xlarge"]
    max_size       = 2
    gpus_per_node  = 1
    capacity_type  = "SPOT"
    workload       = "training"
  }
}

database = {
  engine_version            = "17"
  instance_class            = "db.t4g.medium"
  allocated_storage_gib     = 20
  max_allocated_storage_gib = 100
  multi_az                  = false
  backup_retention_days     = 7
  deletion_protection       = true
}

inference_logs_retention_days = 180

namespaces = {
  pipelines = "kubeflow"
  serving   = "aidetect-staging"
  mlflow    = "mlflow"
}
