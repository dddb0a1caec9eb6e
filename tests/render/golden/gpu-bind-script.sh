#!/bin/bash
# KATA-3.1: bash gpu.sh (bind, prints VFIO=/dev/vfio/<group>) | bash gpu.sh undo (give the GPU back)
set -euo pipefail
mapfile -t found < <(lspci -nn -D | grep -i nvidia | awk '{print $1}')
if [ "${#found[@]}" -ne 1 ]; then
    echo "expected exactly one NVIDIA PCI function, found ${#found[@]}: ${found[*]:-none}" >&2
    echo "set answers.gpu.bdf in the recipe (lspci -nn -D | grep -i nvidia)" >&2
    exit 1
fi
BDF=${found[0]}
DEV="/sys/bus/pci/devices/$BDF"
case "${1:-bind}" in
    bind)
        modprobe vfio-pci
        # a GPU still bound to another driver (nvidia, nouveau) must let go before vfio-pci can take it
        if [ -e "$DEV/driver" ]; then echo "$BDF" > "$DEV/driver/unbind"; fi
        echo vfio-pci > "$DEV/driver_override"
        echo "$BDF" > /sys/bus/pci/drivers_probe
        group=$(basename "$(readlink -e "$DEV/iommu_group")")
        ls -l /dev/vfio
        echo "export VFIO=/dev/vfio/$group"
        ;;
    undo)
        # the seed writes $DEV/preferred_driver, which sysfs does not have; the override lives in driver_override
        echo > "$DEV/driver_override"
        if [ -e "$DEV/driver" ]; then echo "$BDF" > "$DEV/driver/unbind"; fi
        echo "$BDF" > /sys/bus/pci/drivers_probe
        ;;
    *)
        echo "usage: $0 [bind|undo]" >&2
        exit 2
        ;;
esac
