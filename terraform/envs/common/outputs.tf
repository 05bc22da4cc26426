output "ansible" {
  description = "Inputs of the Ansible add-on install (ansible-playbook ansible/tf_outputs.yml -e env=<env>)."
  value       = module.platform.ansible
}
