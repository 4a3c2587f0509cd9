// Parse memory for one JSON message: fixed per-thread buffers, so parsing a typical message
// allocates nothing (rapidjson falls back to the heap only beyond them).
#pragma once

#include <rapidjson/allocators.h>
#include <rapidjson/document.h>

namespace ringcast::profiles {

struct JsonArena {
  char values[32 * 1024];
  char stack[8 * 1024];
  rapidjson::MemoryPoolAllocator<> value_alloc{values, sizeof values};
  rapidjson::MemoryPoolAllocator<> stack_alloc{stack, sizeof stack};
};

using ArenaDocument =
    rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                               rapidjson::MemoryPoolAllocator<>>;

// This thread's arena, emptied. Whatever was parsed into it before is gone.
inline JsonArena& json_arena() {
  thread_local JsonArena a;
  a.value_alloc.Clear();
  a.stack_alloc.Clear();
  return a;
}

}  // namespace ringcast::profiles
