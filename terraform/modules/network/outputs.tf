output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones used, in subnet order."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "Public subnet IDs, one per AZ."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnet IDs, one per AZ (EKS nodes go here)."
  value       = aws_subnet.private[*].id
}

output "nat_gateway_ids" {
  description = "NAT gateway IDs (1 when single_nat_gateway, else one per AZ)."
  value       = aws_nat_gateway.this[*].id
}

output "iam_roles" {
  description = "Every IAM role of the module (the flow logs' one): name -> its permissions boundary (null: none)."
  value       = { for role in aws_iam_role.flow_logs : role.name => role.permissions_boundary }
}
