output "security_group_id" {
  value = module.platform.security_group_id
}

output "app_role_name" {
  value = module.platform.role_name
}

output "app_role_arn" {
  value = module.platform.role_arn
}

output "artifacts_bucket" {
  value = module.platform.bucket_name
}

output "artifacts_bucket_arn" {
  value = module.platform.bucket_arn
}

output "deploy_role_arn" {
  value = aws_ssm_parameter.deploy_role.insecure_value
}
