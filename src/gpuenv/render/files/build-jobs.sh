#!/bin/sh
# Written by gpuenv: how many compile jobs a build here may run at once (MAX_JOBS, read by torch's
# cpp_extension, flash-attn, DeepSpeed, xformers ...): the CPUs it may use, and no more jobs than its
# memory holds at GPUENV_JOB_GIB GiB each (default 4; nvcc jobs of large CUDA kernels take more:
# flash-attn's setup.py counts ~8-9 GB a job at 4 threads). The memory is what is available now, or the
# container's own limit when that is lower (cgroup v2 memory.max, v1 memory.limit_in_bytes).
per_job="${GPUENV_JOB_GIB:-4}"
cpus="$(nproc 2>/dev/null || echo 1)"
kib="$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null)"
for limit in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
    if [ -r "$limit" ]; then
        bytes="$(cat "$limit")"
        case "$bytes" in ''|max|*[!0-9]*) ;; *)
            if [ -z "$kib" ] || [ $((bytes / 1024)) -lt "$kib" ]; then kib=$((bytes / 1024)); fi ;;
        esac
    fi
done
jobs="$cpus"
if [ -n "$kib" ] && [ "$per_job" -gt 0 ] 2>/dev/null; then
    by_memory=$((kib / 1024 / 1024 / per_job))
    [ "$by_memory" -lt "$jobs" ] && jobs="$by_memory"
fi
[ "$jobs" -ge 1 ] || jobs=1
echo "$jobs"
