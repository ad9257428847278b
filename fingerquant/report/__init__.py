"""Tables and plots for the README, built from the ``results.json`` of sweep cells."""
