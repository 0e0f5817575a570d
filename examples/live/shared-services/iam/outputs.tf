output "deploy_role_arns" {
  description = "Environment name => ARN of its deploy role."
  value       = { for env, role in aws_iam_role.deploy : env => role.arn }
}

output "state_access_policy_arn" {
  value = aws_iam_policy.state_access.arn
}
