#!/usr/bin/perl
# A FastCGI application with libfcgi-perl (tests/integration/test_real_apps.py):
# the listening socket is file descriptor 0 (the libfcgi convention, as
# certgate's spawn gives it); each request gets its parameters as JSON.
use strict;
use warnings;
use FCGI;
use JSON::PP;

my %env;
my $request = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%env, 0);
my $json = JSON::PP->new->canonical(1);

while ($request->Accept() >= 0) {
	my %out = (pid => $$, params => {%env});
	print "Content-Type: application/json\r\n\r\n", $json->encode(\%out), "\n";
	$request->Finish();
}
