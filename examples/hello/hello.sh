#!/bin/sh
# A binary function: CGI-style, the request in the environment and on stdin,
# the body on stdout.
echo "Hello, ${HTTP_X_FLINT_PARAM_WHO:-world}, from a shell script!"
