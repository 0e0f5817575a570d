output "vpc_id" {
  value = module.vpc.vpc_id
}

output "subnet_ids" {
  value = module.vpc.subnet_ids
}

output "vpc_cidr" {
  value = module.vpc.cidr
}

output "route_table_id" {
  value = module.vpc.route_table_id
}
