"""What a site and the hub are set up with: the broker's settings (``mosquitto/conf.d``), a
Grafana dashboard over the InfluxDB mirror (``grafana/``), the systemd units (``systemd``, a link
to the top-level ``systemd/`` so that the wheel carries them) and the door's installer
(``install.sh``, run from a checkout or a copy; it is not package data)."""
