#!/usr/bin/env bash
# Capture the facts cai-tui's checks read (nvidia-smi outputs, PCI/IOMMU sysfs, driver, kernel config, TDX signs)
# into DIR/ as text files, each starting with the command that produced it. Used to make parser fixtures and
# sysroot captures from real machines. Usage: capture-machine.sh OUTDIR
set -u
D=${1:?usage: capture-machine.sh OUTDIR}
mkdir -p "$D" && cd "$D" || exit 2
c() { n=$1; shift; { echo "# \$ $*"; ("$@") 2>&1; echo "# rc=$?"; } > "$n.txt"; }
c nvidia-smi nvidia-smi
c nvidia-smi-L nvidia-smi -L
c nvidia-smi-query-csv nvidia-smi --query-gpu=index,name,pci.bus_id,driver_version,memory.total --format=csv,noheader,nounits
c nvidia-smi-query-csv-header nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,memory.used,compute_mode,persistence_mode --format=csv
c nvidia-smi-q nvidia-smi -q
c conf-compute-f nvidia-smi conf-compute -f
c conf-compute-grs nvidia-smi conf-compute -grs
c conf-compute-q nvidia-smi conf-compute -q
c conf-compute-help nvidia-smi conf-compute -h
# per GPU (the gpu.cc_mode check asks each index): conf-compute-f-i0.txt, conf-compute-f-i1.txt, …
for i in $(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null); do c "conf-compute-f-i$i" nvidia-smi conf-compute -f -i "$i"; done
c nvidia-smi-version nvidia-smi --version
c proc-driver-version cat /proc/driver/nvidia/version
c proc-driver-gpus sh -c 'for d in /proc/driver/nvidia/gpus/*; do echo "== $d"; cat "$d/information"; done'
c lspci-nn-D lspci -nn -D
c sysfs-pci sh -c 'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x10de ] || continue; echo "== $d"; for f in vendor device class subsystem_vendor subsystem_device numa_node driver_override; do printf "%s=%s\n" $f "$(cat $d/$f 2>&1)"; done; echo "driver=$(readlink $d/driver)"; echo "iommu_group=$(readlink $d/iommu_group)"; done'
c iommu sh -c 'ls /sys/kernel/iommu_groups/ | head; ls /sys/class/iommu/; ls -l /dev/vfio'
c uname uname -a
c cpuinfo-flags sh -c 'grep -m1 flags /proc/cpuinfo; grep -m1 "model name" /proc/cpuinfo'
c tdx sh -c 'ls -l /dev/tdx_guest /dev/tdx-guest; ls /sys/kernel/config/tsm; cat /proc/cmdline'
c kernel-config sh -c 'ls /proc/config.gz /boot/config-$(uname -r) /lib/modules/$(uname -r)/config; (zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)) | grep -E "CONFIG_VFIO|CONFIG_IOMMU|CONFIG_INTEL_TDX|CONFIG_TSM"'
c modules sh -c 'ls /sys/module | grep -i -E "vfio|nvidia"; ls /lib/modules/$(uname -r)/kernel/drivers/vfio; grep vfio /lib/modules/$(uname -r)/modules.builtin'
c docker-version sh -c 'docker version; docker compose version'
c os-release cat /etc/os-release
exit 0
