# Zones are pinned by name (var.availability_zones) instead of "the first N
# available zones of the region": that list can shift when a zone changes
# state or AWS adds one, which would move subnets. The lookup still validates
# at plan time that every pinned zone exists and is available.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.azs
  }

  lifecycle {
    postcondition {
      condition     = alltrue([for z in local.azs : contains(self.names, z)])
      error_message = "Some of the availability_zones do not exist in this region or are not available."
    }
  }
}

locals {
  azs = slice(var.availability_zones, 0, var.az_count)

  # Address plan: the VPC is cut into 8 equal blocks. Blocks 0..5 are the
  # private subnets (one per AZ, large because the VPC CNI gives every pod a
  # VPC IP); block 7 is cut again into 8 small public subnets (only NAT
  # gateways and load balancers live there). For a /16: private /19, public /22.
  private_cidrs = [for i in range(var.az_count) : cidrsubnet(var.cidr, 3, i)]
  public_cidrs  = [for i in range(var.az_count) : cidrsubnet(cidrsubnet(var.cidr, 3, 7), 3, i)]

  nat_count = var.single_nat_gateway ? 1 : var.az_count

  cluster_tag = var.cluster_name == null ? {} : { "kubernetes.io/cluster/${var.cluster_name}" = "shared" }
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # required for EKS private endpoint resolution

  tags = merge(var.tags, { Name = var.name })
}

# Take over the default security group and leave it without rules so nothing
# can accidentally use the permissive AWS default.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = var.az_count

  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.public_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false # only NAT gateways and load balancers live here

  # kubernetes.io/role/elb: the AWS Load Balancer Controller places
  # internet-facing load balancers in subnets carrying this tag.
  tags = merge(var.tags, local.cluster_tag, {
    Name                     = "${var.name}-public-${local.azs[count.index]}"
    "kubernetes.io/role/elb" = "1"
  })
}

resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.private_cidrs[count.index]
  availability_zone = local.azs[count.index]

  # kubernetes.io/role/internal-elb: internal load balancers go here.
  tags = merge(var.tags, local.cluster_tag, {
    Name                              = "${var.name}-private-${local.azs[count.index]}"
    "kubernetes.io/role/internal-elb" = "1"
  })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = var.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name}-nat-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = merge(var.tags, { Name = "${var.name}-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

# One private route table per AZ, even with a single NAT gateway, so that
# switching single_nat_gateway only changes routes, never subnet associations.
resource "aws_route_table" "private" {
  count = var.az_count

  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}" })
}

resource "aws_route" "private_nat" {
  count = var.az_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}
