#!/bin/bash -x
# KATA-1.6: /usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh inside the guest rootfs (mounted at /home/mnt),
# mode 0755, Unix line endings. The kata agent runs every executable file in /usr/share/oci/hooks/prestart
# (guest_hook_path = "/usr/share/oci/hooks" in /etc/kata-containers/configuration.toml, KATA-1.8) before the container starts.
/usr/bin/nvidia-container-toolkit -debug "$@"
