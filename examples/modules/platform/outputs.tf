output "security_group_id" {
  value = aws_security_group.app.id
}

output "role_name" {
  value = aws_iam_role.app.name
}

output "role_arn" {
  value = aws_iam_role.app.arn
}

output "bucket_name" {
  value = module.artifacts.bucket_name
}

output "bucket_arn" {
  value = module.artifacts.bucket_arn
}
