#!/usr/bin/perl
# Minimal master_ip_online_change_script for MHA's online switchover in bench/peers.py.
# stop:  the original master turns read_only and its client connections are killed
#        (all but MHA's own, which share the manager's user)
#        (MHA then takes FLUSH TABLES WITH READ LOCK itself);
# start: the new master takes writes (read_only off).
# No VIP to move: the benchmark's writer finds the writable server by itself.
use strict;
use warnings;
use DBI;
use Getopt::Long qw(:config pass_through);

my %o;
GetOptions(\%o, 'command=s', 'orig_master_host=s', 'orig_master_ip=s', 'orig_master_port=i',
           'orig_master_user=s', 'orig_master_password=s', 'new_master_host=s', 'new_master_ip=s',
           'new_master_port=i', 'new_master_user=s', 'new_master_password=s');
my $cmd = $o{command} || '';

sub dbh {
  my ($host, $port, $user, $pass) = @_;
  $pass =~ s/\\//g if defined $pass;    # MHA escapes the password for the shell
  return DBI->connect("DBI:mysql:;host=$host;port=$port", $user, $pass,
                      { PrintError => 0, RaiseError => 1, AutoCommit => 1 });
}

if ($cmd eq 'stop') {
  my $d = dbh($o{orig_master_ip} || $o{orig_master_host}, $o{orig_master_port},
              $o{orig_master_user}, $o{orig_master_password});
  $d->do('SET GLOBAL read_only = 1');
  my $me = $d->selectrow_array('SELECT CONNECTION_ID()');
  my $rows = $d->selectall_arrayref(
    "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> $me AND USER NOT IN ('system user', 'event_scheduler', ?) "
    . "AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Killed') AND COMMAND NOT LIKE 'Slave%'", undef, $o{orig_master_user});
  for my $r (@$rows) { eval { $d->do("KILL CONNECTION $r->[0]") }; }
  exit 0;
} elsif ($cmd eq 'start') {
  my $d = dbh($o{new_master_ip} || $o{new_master_host}, $o{new_master_port},
              $o{new_master_user}, $o{new_master_password});
  $d->do('SET GLOBAL read_only = 0');
  exit 0;
} elsif ($cmd eq 'status') {
  exit 0;
}
exit 0;
