// io_uring user_data for every submission: which operation completed and on
// which connection slot. The generation tells a completion for a slot's
// previous occupant (a late CQE after the slot was reused) from a current one.
#pragma once

#include <cstdint>

namespace sluice::proxy {

enum class Op : uint8_t {
  Accept = 1,       // id = listener index
  Recv,             // multishot receive into provided buffers
  Send,
  Connect,          // upstream connect
  Wake,             // eventfd read: a control message from the Proxy
  Cancel,           // result of an async cancel; nothing to do
};

struct UserData {
  Op op;
  uint32_t generation;   // 24 bits used
  uint32_t id;
};

constexpr uint64_t encode_user_data(Op op, uint32_t generation, uint32_t id) {
  return (uint64_t{static_cast<uint8_t>(op)} << 56) | (uint64_t{generation & 0xffffffu} << 32) | id;
}

constexpr UserData decode_user_data(uint64_t v) {
  return UserData{static_cast<Op>(v >> 56), static_cast<uint32_t>((v >> 32) & 0xffffffu),
                  static_cast<uint32_t>(v)};
}

}  // namespace sluice::proxy
