"""What a site and the hub are set up with: the broker's settings (``mosquitto/conf.d``) and a
Grafana dashboard over the InfluxDB mirror (``grafana/``)."""
