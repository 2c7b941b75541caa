//===- HostBuffer.cpp - Large host buffers on huge pages ------------------===//
#include "runtime/HostBuffer.h"

#include <cstdlib>
#include <sys/mman.h>
#include <utility>

using namespace moe;

static constexpr size_t kHuge = size_t(2) << 20;     // a transparent huge page
static constexpr size_t kMapFrom = size_t(4) << 20;  // mapped from this size on
static constexpr size_t kHeapAlign = 64;

HostBuffer HostBuffer::allocate(size_t n) {
  HostBuffer b;
  n = n ? n : 1;
  if (n >= kMapFrom) {
    size_t bytes = (n + kHuge - 1) / kHuge * kHuge + kHuge; // room to align
    void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      uintptr_t aligned = (reinterpret_cast<uintptr_t>(m) + kHuge - 1) / kHuge * kHuge;
      madvise(reinterpret_cast<void *>(aligned), bytes - (aligned - reinterpret_cast<uintptr_t>(m)),
              MADV_HUGEPAGE); // advice only: without THP it is ignored
      b.Map = m;
      b.MapBytes = bytes;
      b.Data = reinterpret_cast<uint8_t *>(aligned);
      b.Size = n;
      return b;
    }
  }
  b.Data = static_cast<uint8_t *>(std::aligned_alloc(kHeapAlign, (n + kHeapAlign - 1) /
                                                                     kHeapAlign * kHeapAlign));
  b.Size = b.Data ? n : 0;
  return b;
}

void HostBuffer::touchPages() {
  volatile uint8_t *p = Data; // the stores are the point: keep each one
  for (size_t i = 0; i < Size; i += 4096)
    p[i] = 0;
  if (Size)
    p[Size - 1] = 0;
}

HostBuffer::HostBuffer(HostBuffer &&o) noexcept { *this = std::move(o); }

HostBuffer &HostBuffer::operator=(HostBuffer &&o) noexcept {
  if (this != &o) {
    release();
    Data = std::exchange(o.Data, nullptr);
    Size = std::exchange(o.Size, 0);
    Map = std::exchange(o.Map, nullptr);
    MapBytes = std::exchange(o.MapBytes, 0);
  }
  return *this;
}

HostBuffer::~HostBuffer() { release(); }

void HostBuffer::release() {
  if (Map)
    munmap(Map, MapBytes);
  else
    std::free(Data);
  Data = nullptr;
  Map = nullptr;
  Size = MapBytes = 0;
}
