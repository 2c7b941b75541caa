//===- HostBuffer.h - Large host buffers on huge pages ----------*- C++ -*-===//
//
// A move-only byte buffer, not zero-filled. Buffers of 4 MiB and more are
// anonymous mappings aligned to 2 MiB and advised to use transparent huge
// pages (MADV_HUGEPAGE), so that first touching them takes a page fault per
// 2 MiB instead of per 4 KiB; smaller ones come from the heap, 64-byte
// aligned. On the 2-vCPU VM this project is measured on a 4 KiB fault costs
// ~10 us: cutting the tp-split shards of a real-size Qwen3-30B-A3B layer
// (640 MB) took 1.9 s of faults alone.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe {

class HostBuffer {
public:
  HostBuffer() = default;
  /// `n` bytes (at least 1); null data() if the memory cannot be had.
  static HostBuffer allocate(size_t n);
  HostBuffer(HostBuffer &&o) noexcept;
  HostBuffer &operator=(HostBuffer &&o) noexcept;
  HostBuffer(const HostBuffer &) = delete;
  HostBuffer &operator=(const HostBuffer &) = delete;
  ~HostBuffer();

  uint8_t *data() const { return Data; }
  size_t size() const { return Size; }
  /// Writes a zero byte into every 4 KiB page, so that every page is
  /// backed now and later use of any of them takes no page fault.
  void touchPages();

private:
  uint8_t *Data = nullptr;
  size_t Size = 0;
  void *Map = nullptr; ///< the mapping (Data is aligned inside it), or null
  size_t MapBytes = 0;
  void release();
};

} // namespace moe
