output "orders_table" {
  value = module.orders.name
}

output "orders_table_arn" {
  value = module.orders.arn
}

output "network_parameter" {
  value = aws_ssm_parameter.network.name
}

output "schema_version" {
  value = terraform_data.schema.output
}
