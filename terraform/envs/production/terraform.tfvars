# Production: NAT gateway per zone, multi-AZ database, on-demand GPU inference plus a spot training group.
region         = "us-east-1"
aws_account_id = "222222222222" # replace with the production account
environment    = "production"

network = {
  vpc_cidr             = "10.50.0.0/16"
  availability_zones   = ["us-east-1a", "us-east-1b", "us-east-1c"]
  private_subnet_cidrs = ["10.50.0.0/19", "10.50.32.0/19", "10.50.64.0/19"]
  public_subnet_cidrs  = ["10.50.96.0/22", "10.50.100.0/22", "10.50.104.0/22"]
  single_nat_gateway   = false
}

kubernetes_version = "1.33"

# The predictor's hostname (ACM certificate, gateway host) and the Route 53 zone that holds it: replace both.
serving_hostname = "detect.aidetect.example.com"
route53_zone_id  = "Z0000000000EXAMPLE2"

# Who administers the cluster (EKS access entries; the creator gets no implicit admin).
cluster_admin_principal_arns = ["arn:aws:iam::222222222222:role/aidetect-platform-admin"]

system_node_group = {
  instance_types = ["m7i.2xlarge"]
  min_size       = 3
  max_size       = 6
  desired_size   = 3
}

gpu_node_groups = {
  gpu-inference = {
    instance_types = ["g6.xlarge", "g6.2xlarge"]
    max_size       = 8
    gpus_per_node  = 1
    workload       = "inference"
  }
  gpu-training-spot = {
    instance_types = ["g6e.2xlarge", "g6.4xlarge"]
    max_size       = 4
    gpus_per_node  = 1
    capacity_type  = "SPOT"
    workload       = "training"
  }
}

database = {
  engine_version            = "17"
  instance_class            = "db.m7g.large"
  allocated_storage_gib     = 100
  max_allocated_storage_gib = 500
  multi_az                  = true
  backup_retention_days     = 30
  deletion_protection       = true
}

inference_logs_retention_days = 400

namespaces = {
  pipelines = "kubeflow"
  serving   = "aidetect-production"
  mlflow    = "mlflow"
}
