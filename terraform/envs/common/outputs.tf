output "ansible" {
  description = "Inputs of the Ansible add-on install (ansible-playbook ansible/tf_outputs.yml -e env=<env>)."
  value       = module.platform.ansible
}

output "bastion_instance_id" {
  description = "SSM target for port forwarding to the private EKS API endpoint (docs/runbook.md, step 2)."
  value       = module.platform.bastion_instance_id
}
