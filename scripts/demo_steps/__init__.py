"""The demo pipeline's steps, one module each: each calls the jobs below it on the demo data."""
