"""The kata lab: the kata-virtcca flow on this machine — real qemu-img/e2fsprogs on a small ext4 image, real CNI
plugins in network namespaces, a private containerd with runc standing in for the kata runtime, a fake sysfs tree
for the vfio steps. What is not the real thing is listed once, in :mod:`cai_tui.lab.kata.not_real`."""
