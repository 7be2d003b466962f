package MHAMariaDBOverlay;

# Two run-time fixes that let MHA 0.58 (Debian mha4mysql-manager/-node) drive
# MariaDB 10.x, loaded with PERL5LIB=<this folder> PERL5OPT=-MMHAMariaDBOverlay.
# MHA's own files stay untouched: this module only replaces two subs after
# loading the modules that define them.
#
# 1. MHA::NodeUtil::parse_mysql_version / parse_mysql_major_version feed every
#    number of the version string to sprintf; "10.11.6-MariaDB-0+deb12u1-log"
#    has six, and MHA's "use warnings FATAL" turns "Redundant argument in
#    sprintf" into a death. Only the leading x.y.z counts.
# 2. MHA::SlaveUtil::check_if_super_read_only selects @@global.super_read_only,
#    which MariaDB does not have: the probe dies. MariaDB has no such mode, so
#    the answer is "off" (the caller then leaves read_only handling as it is).

use strict;
use warnings;

use MHA::NodeUtil;

sub _leading_numbers {
  my ( $str, $count ) = @_;
  my @parts = ( ( defined $str ? $str : '' ) =~ m/^\D*(\d+)(?:\.(\d+))?(?:\.(\d+))?/ );
  @parts = map { defined $_ ? $_ : 0 } @parts[ 0 .. $count - 1 ];
  return sprintf( '%03d' x $count, @parts );
}

{
  no warnings qw(redefine prototype);
  *MHA::NodeUtil::parse_mysql_version       = sub ($) { _leading_numbers( shift, 3 ) };
  *MHA::NodeUtil::parse_mysql_major_version = sub ($) { _leading_numbers( shift, 2 ) };
}

# SlaveUtil exists only where the manager is installed (and needs DBI).
if ( eval { require MHA::SlaveUtil; 1 } ) {
  no warnings qw(redefine prototype);
  *MHA::SlaveUtil::check_if_super_read_only = sub { return ( 0, 0 ) };
}

1;
