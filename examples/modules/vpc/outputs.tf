output "vpc_id" {
  value = aws_vpc.this.id
}

output "subnet_ids" {
  value = aws_subnet.public[*].id
}

output "cidr" {
  value = aws_vpc.this.cidr_block
}

output "route_table_id" {
  value = aws_route_table.public.id
}
