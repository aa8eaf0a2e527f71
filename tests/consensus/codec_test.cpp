// The peer codec: every message type round-trips, and every kind of bad
// frame decodes to MarshallingError.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "coord/base/checksum.h"
#include "coord/base/limits.h"
#include "coord/consensus/codec.h"

namespace coord::consensus::codec {
namespace {

Message sample(MessageType t) {
  Message m;
  m.type = t;
  m.from = NodeId(3);
  m.to = NodeId(0x0102030405060708ULL);
  m.term = Term(77);
  m.log_term = Term(76);
  m.index = LogIndex(1'000'000'000'001ULL);
  m.commit = LogIndex(999);
  m.reject = true;
  m.reject_hint = LogIndex(42);
  m.transfer = true;
  m.context = ~std::uint64_t{0};
  m.entries.push_back(Entry{Term(76), LogIndex(5), EntryType::Normal, "hello"});
  m.entries.push_back(Entry{Term(77), LogIndex(6), EntryType::ConfChange,
                            ConfChange{ConfChangeType::AddLearner, NodeId(9)}.encode()});
  m.entries.push_back(Entry{Term(77), LogIndex(7), EntryType::Normal, std::string("\0\xff", 2)});
  if (t == MessageType::InstallSnapshot) {
    auto s = std::make_shared<Snapshot>();
    s->meta = SnapshotMeta{LogIndex(4), Term(70), ConfState{{NodeId(1), NodeId(3)}, {NodeId(9)}}};
    s->data = std::string(1000, 'z');
    m.snapshot = s;
  }
  if (t == MessageType::SnapshotChunk) {
    // A joint configuration, and a chunk in the middle of a large snapshot.
    auto s = std::make_shared<Snapshot>();
    s->meta = SnapshotMeta{LogIndex(4), Term(70),
                           ConfState{{NodeId(1), NodeId(4)}, {NodeId(9)}, {NodeId(1), NodeId(2)}}};
    s->data = std::string(100, 'c');
    m.snapshot = s;
    m.chunk_offset = 5'000'000'000ULL;
    m.chunk_last = true;
  }
  if (t == MessageType::SnapshotChunkResponse) m.chunk_offset = 1'048'576;
  if (t >= MessageType::SnapshotChunk) {
    // The joint encoding of a configuration change (types added later carry
    // it, so the frames of the first encoder stay as they were).
    JointConfChange j{
        {{ConfChangeType::AddVoter, NodeId(4)}, {ConfChangeType::RemoveVoter, NodeId(1)}}};
    m.entries.push_back(Entry{Term(77), LogIndex(8), EntryType::ConfChange, j.encode()});
  }
  return m;
}

// Rewrites the checksum so a test can reach the checks behind it.
void reseal(std::string& f) {
  std::uint32_t crc = crc32c_extend(0, f.data(), 8);
  crc = crc32c_extend(crc, f.data() + frame_header_bytes, f.size() - frame_header_bytes);
  for (int i = 0; i < 4; ++i)
    f[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
}

void set_u32(std::string& f, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    f[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

TEST(PeerCodec, EveryMessageTypeRoundTrips) {
  for (int t = 0; t < message_type_count; ++t) {
    const Message m = sample(static_cast<MessageType>(t));
    auto frame = encode(m);
    ASSERT_TRUE(frame.ok()) << frame.status();
    EXPECT_EQ(frame_size(*frame).value(), frame->size());
    auto back = decode(*frame);
    ASSERT_TRUE(back.ok()) << to_string(m.type) << ": " << back.status();
    EXPECT_EQ(*back, m) << to_string(m.type);
  }
}

// Version 1 grew by message types and flags: the frames the first version 1
// encoder wrote (the seed corpus, kept as it was written) decode to the same
// messages and encode back to the same bytes.
TEST(PeerCodec, FramesOfTheFirstVersionOneEncoderStillDecode) {
  for (int t = 0; t <= static_cast<int>(MessageType::ReadIndexResponse); ++t) {
    const auto type = static_cast<MessageType>(t);
    const std::string path = std::string(COORD_TEST_SOURCE_DIR) + "/fuzz_corpus/" +
                             std::string(to_string(type)) + ".bin";
    std::FILE* in = std::fopen(path.c_str(), "rb");
    ASSERT_NE(in, nullptr) << path;
    std::string f;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;)
      f.append(buf, n);
    std::fclose(in);
    auto m = decode(f);
    ASSERT_TRUE(m.ok()) << path << ": " << m.status();
    EXPECT_EQ(*m, sample(type)) << path;
    EXPECT_EQ(encode(*m).value(), f) << path;
  }
}

TEST(PeerCodec, ChunkOffsetOnlyOnChunkMessagesAndJointOnlyWithASnapshot) {
  // An Append that claims a chunk offset.
  std::string f = encode(sample(MessageType::Append)).value() + std::string(8, '\0');
  f[frame_header_bytes + 64] = static_cast<char>(f[frame_header_bytes + 64] | 8);
  set_u32(f, 0, static_cast<std::uint32_t>(f.size() - frame_header_bytes));
  reseal(f);
  EXPECT_EQ(decode(f).status().message(), "peer frame: chunk flag mismatch");
  // A chunk without its offset.
  Message c = sample(MessageType::SnapshotChunkResponse);
  std::string g = encode(c).value();
  g.resize(g.size() - 8);
  g[frame_header_bytes + 64] = static_cast<char>(g[frame_header_bytes + 64] & ~(8 | 16));
  set_u32(g, 0, static_cast<std::uint32_t>(g.size() - frame_header_bytes));
  reseal(g);
  EXPECT_EQ(decode(g).status().message(), "peer frame: chunk flag mismatch");
  // A joint configuration flag without a snapshot.
  std::string h = encode(sample(MessageType::Heartbeat)).value();
  h[frame_header_bytes + 64] = static_cast<char>(h[frame_header_bytes + 64] | 32);
  reseal(h);
  EXPECT_EQ(decode(h).status().message(), "peer frame: joint flag without snapshot");
  // A chunk cut short inside its offset.
  std::string k = encode(c).value();
  k.resize(k.size() - 3);
  set_u32(k, 0, static_cast<std::uint32_t>(k.size() - frame_header_bytes));
  reseal(k);
  EXPECT_EQ(decode(k).status().message(), "peer frame: short chunk offset");
}

// Conf change entries: the encodings without a context (versions 1 and 2)
// are those every earlier build wrote and read; contexts come with
// versions 3 and 4.
std::string bytes(std::initializer_list<int> v) {
  std::string out;
  for (int b : v)
    out.push_back(static_cast<char>(b));
  return out;
}

TEST(ConfChangeEncoding, EntriesWithoutContextKeepTheirOldBytes) {
  const std::string v1 = bytes({1, 2, 9, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ((ConfChange{ConfChangeType::AddLearner, NodeId(9)}.encode()), v1);
  auto one = ConfChange::decode(v1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, (ConfChange{ConfChangeType::AddLearner, NodeId(9)}));
  EXPECT_TRUE(one->context.empty());

  const std::string v2 = bytes({2, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0});
  const JointConfChange j{
      {{ConfChangeType::AddVoter, NodeId(4)}, {ConfChangeType::RemoveVoter, NodeId(1)}}};
  EXPECT_EQ(j.encode(), v2);
  auto joint = JointConfChange::decode(v2);
  ASSERT_TRUE(joint.ok()) << joint.status();
  EXPECT_EQ(*joint, j);
  EXPECT_EQ(JointConfChange{}.encode(), bytes({2, 0}));

  // Each decoder takes only its own forms.
  EXPECT_FALSE(ConfChange::decode(v2).ok());
  EXPECT_FALSE(JointConfChange::decode(v1).ok());
}

TEST(ConfChangeEncoding, ContextsRoundTripInVersionsThreeAndFour) {
  const ConfChange add{ConfChangeType::AddVoter, NodeId(0x0102), "ab"};
  const std::string v3 = bytes({3, 0, 2, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 'a', 'b'});
  EXPECT_EQ(add.encode(), v3);
  EXPECT_EQ(ConfChange::decode(v3).value(), add);

  // One context is enough for the joint change to carry a length for each.
  const JointConfChange j{
      {{ConfChangeType::RemoveVoter, NodeId(3)}, {ConfChangeType::AddLearner, NodeId(3), "x"}}};
  const std::string v4 = bytes(
      {4, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'x'});
  EXPECT_EQ(j.encode(), v4);
  EXPECT_EQ(JointConfChange::decode(v4).value(), j);

  // The longest context there may be, with every byte value.
  std::string ctx(limits::conf_change_context_bytes_max, '\0');
  for (std::size_t i = 0; i < ctx.size(); ++i)
    ctx[i] = static_cast<char>(i & 0xff);
  const ConfChange big{ConfChangeType::PromoteLearner, NodeId(7), ctx};
  EXPECT_EQ(ConfChange::decode(big.encode()).value(), big);
  const JointConfChange many{std::vector<ConfChange>(2 * limits::cluster_members_max, big)};
  EXPECT_EQ(JointConfChange::decode(many.encode()).value(), many);
}

TEST(ConfChangeEncoding, EntriesOfEitherFormApplyAndGiveTheirChanges) {
  const ConfState three{{NodeId(1), NodeId(2), NodeId(3)}, {}};
  const ConfChange add{ConfChangeType::AddLearner, NodeId(4), "server.4=h:1:2:observer;3"};
  EXPECT_EQ(apply_conf_entry(add.encode(), three).value().learners, std::vector{NodeId(4)});
  EXPECT_EQ(conf_entry_changes(add.encode()).value(), std::vector{add});

  const JointConfChange j{
      {{ConfChangeType::AddVoter, NodeId(4), "four"}, {ConfChangeType::RemoveVoter, NodeId(1)}}};
  const ConfState joint = apply_conf_entry(j.encode(), three).value();
  EXPECT_EQ(joint.voters, (std::vector{NodeId(2), NodeId(3), NodeId(4)}));
  EXPECT_EQ(joint.voters_outgoing, three.voters);
  EXPECT_EQ(conf_entry_changes(j.encode()).value(), j.changes);
  EXPECT_TRUE(conf_entry_changes(JointConfChange{}.encode()).value().empty());
  EXPECT_EQ(conf_entry_changes(bytes({1, 0, 5, 0, 0, 0, 0, 0, 0, 0})).value(),
            std::vector{(ConfChange{ConfChangeType::AddVoter, NodeId(5)})});
  EXPECT_EQ(conf_entry_changes("").status().code(), ErrorCode::MarshallingError);
  EXPECT_EQ(conf_entry_changes(bytes({5, 0})).status().code(), ErrorCode::MarshallingError);
}

TEST(ConfChangeEncoding, MalformedContextsAreRefused) {
  const std::string v3 = ConfChange{ConfChangeType::AddVoter, NodeId(2), "abc"}.encode();
  const std::string v4 = JointConfChange{
      {{ConfChangeType::AddVoter, NodeId(2), "abc"},
       {ConfChangeType::AddVoter, NodeId(5),
        "de"}}}.encode();
  // Every truncation, and a byte too many.
  for (std::size_t n = 0; n < v3.size(); ++n)
    EXPECT_EQ(ConfChange::decode(v3.substr(0, n)).status().code(), ErrorCode::MarshallingError)
        << n;
  for (std::size_t n = 0; n < v4.size(); ++n) {
    EXPECT_EQ(JointConfChange::decode(v4.substr(0, n)).status().code(), ErrorCode::MarshallingError)
        << n;
  }
  EXPECT_FALSE(ConfChange::decode(v3 + "z").ok());
  EXPECT_FALSE(JointConfChange::decode(v4 + "z").ok());

  // A context length over the limit, whatever follows.
  std::string over = bytes({3, 0, 2, 0, 0, 0, 0, 0, 0, 0});
  const std::uint32_t n = limits::conf_change_context_bytes_max + 1;
  for (int i = 0; i < 4; ++i)
    over.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  over += std::string(n, 'a');
  EXPECT_EQ(ConfChange::decode(over).status().message(), "conf change: context too long");
  // A length that claims more than the bytes hold.
  std::string claims = v3;
  claims[10] = 4;
  EXPECT_EQ(ConfChange::decode(claims).status().message(), "conf change: wrong size");
  // A joint count the bytes cannot hold, and an unknown type inside.
  std::string count = v4;
  count[1] = static_cast<char>(200);
  EXPECT_EQ(JointConfChange::decode(count).status().message(), "joint conf change: wrong size");
  std::string type = v4;
  type[2] = 9;
  EXPECT_EQ(JointConfChange::decode(type).status().message(), "joint conf change: unknown type");

  // A change whose context is too long never reaches the log.
  const ConfChange long_ctx{ConfChangeType::AddVoter, NodeId(9),
                            std::string(limits::conf_change_context_bytes_max + 1, 'x')};
  const ConfState one{{NodeId(1)}, {}};
  EXPECT_EQ(long_ctx.apply_to(one).status().code(), ErrorCode::BadArguments);
  EXPECT_EQ(JointConfChange{{long_ctx}}.apply_to(one).status().code(), ErrorCode::BadArguments);
}

TEST(PeerCodec, EmptyMessageRoundTrips) {
  Message m;
  auto back = decode(encode(m).value());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
}

TEST(PeerCodec, FrameSizeWaitsForAWholeHeader) {
  const std::string f = encode(sample(MessageType::Append)).value();
  for (std::size_t n = 0; n < frame_header_bytes; ++n) {
    EXPECT_EQ(frame_size(std::string_view(f).substr(0, n)).value(), 0u);
  }
}

TEST(PeerCodec, EveryTruncationIsAnError) {
  const std::string f = encode(sample(MessageType::InstallSnapshot)).value();
  for (std::size_t n = 0; n < f.size(); ++n) {
    EXPECT_EQ(decode(std::string_view(f).substr(0, n)).code(), ErrorCode::MarshallingError)
        << "prefix of " << n << " bytes";
  }
}

TEST(PeerCodec, EveryFlippedBitIsCaught) {
  const std::string f = encode(sample(MessageType::Append)).value();
  for (std::size_t byte = 0; byte < f.size(); ++byte) {
    std::string g = f;
    g[byte] ^= 0x10;
    EXPECT_FALSE(decode(g).ok()) << "flip in byte " << byte;
  }
}

TEST(PeerCodec, OversizedLengthIsRefusedFromTheHeader) {
  std::string f = encode(sample(MessageType::Append)).value();
  set_u32(f, 0, static_cast<std::uint32_t>(limits::peer_message_bytes_max));
  EXPECT_EQ(frame_size(f).code(), ErrorCode::MarshallingError);
  EXPECT_EQ(decode(f).code(), ErrorCode::MarshallingError);
}

TEST(PeerCodec, UnknownVersionIsRefused) {
  std::string f = encode(sample(MessageType::Append)).value();
  f[4] = 2;
  reseal(f);
  EXPECT_EQ(frame_size(f).code(), ErrorCode::MarshallingError);
  EXPECT_EQ(decode(f).code(), ErrorCode::MarshallingError);
}

TEST(PeerCodec, UnknownTypeFlagsAndEntryTypeAreRefused) {
  const std::string f = encode(sample(MessageType::Append)).value();
  std::string g = f;
  g[5] = static_cast<char>(message_type_count);
  reseal(g);
  EXPECT_EQ(decode(g).status().message(), "peer frame: unknown message type");
  g = f;
  g[frame_header_bytes + 64] = static_cast<char>(0x80);  // flags
  reseal(g);
  EXPECT_EQ(decode(g).status().message(), "peer frame: unknown flags");
  g = f;
  g[frame_header_bytes + 69 + 16] = 7;  // first entry's type
  reseal(g);
  EXPECT_EQ(decode(g).status().message(), "peer frame: unknown entry type");
}

TEST(PeerCodec, HugeCountsAreRefusedBeforeAllocating) {
  std::string f = encode(sample(MessageType::Append)).value();
  set_u32(f, frame_header_bytes + 65, 0xffffffffu);  // entry count
  reseal(f);
  EXPECT_EQ(decode(f).status().message(), "peer frame: too many entries");
  set_u32(f, frame_header_bytes + 65, limits::append_entries_per_message_max);
  reseal(f);
  EXPECT_EQ(decode(f).status().message(), "peer frame: short entries");
}

TEST(PeerCodec, TrailingBytesAreRefused) {
  std::string f = encode(sample(MessageType::Heartbeat)).value();
  std::string g = f + "x";
  EXPECT_EQ(decode(g).code(), ErrorCode::MarshallingError);
  // A body that claims to be longer than its fields.
  g = f + "xyz";
  set_u32(g, 0, static_cast<std::uint32_t>(g.size() - frame_header_bytes));
  reseal(g);
  EXPECT_EQ(decode(g).status().message(), "peer frame: trailing bytes in the body");
}

TEST(PeerCodec, EncoderRefusesMessagesOverTheLimits) {
  Message m;
  m.entries.resize(limits::append_entries_per_message_max + 1);
  EXPECT_EQ(encode(m).code(), ErrorCode::BadArguments);
  Message big;
  big.entries.push_back(Entry{Term(1), LogIndex(1), EntryType::Normal,
                              std::string(limits::append_entry_bytes_per_message_max + 1, 'x')});
  EXPECT_EQ(encode(big).code(), ErrorCode::BadArguments);
}

}  // namespace
}  // namespace coord::consensus::codec

namespace coord::consensus::codec {
namespace {

// COORD_WRITE_FUZZ_CORPUS=<dir> writes one valid frame per message type,
// the seed corpus of consensus_codec_fuzz (tests/consensus/fuzz_corpus).
TEST(PeerCodec, WritesTheFuzzCorpusWhenAsked) {
  const char* dir = std::getenv("COORD_WRITE_FUZZ_CORPUS");
  if (!dir) GTEST_SKIP() << "set COORD_WRITE_FUZZ_CORPUS to write the corpus";
  for (int t = 0; t < message_type_count; ++t) {
    const std::string f = encode(sample(static_cast<MessageType>(t))).value();
    const std::string path =
        std::string(dir) + "/" + std::string(to_string(static_cast<MessageType>(t))) + ".bin";
    // Frames already there are kept: they are what earlier encoders wrote.
    if (std::FILE* old = std::fopen(path.c_str(), "rb")) {
      std::fclose(old);
      continue;
    }
    std::FILE* out = std::fopen(
        (std::string(dir) + "/" + std::string(to_string(static_cast<MessageType>(t))) + ".bin")
            .c_str(),
        "wb");
    ASSERT_NE(out, nullptr);
    std::fwrite(f.data(), 1, f.size(), out);
    std::fclose(out);
  }
  // Conf change entries that carry contexts (versions 3 and 4).
  const std::string path = std::string(dir) + "/ConfChangeContexts.bin";
  if (std::FILE* old = std::fopen(path.c_str(), "rb")) {
    std::fclose(old);
    return;
  }
  Message m = sample(MessageType::Append);
  m.entries.clear();
  m.entries.push_back(Entry{Term(3), LogIndex(9), EntryType::ConfChange,
                            ConfChange{ConfChangeType::AddLearner, NodeId(4),
                                       "server.4=127.0.0.1:2888:3888:observer;127.0.0.1:2181"}
                                .encode()});
  m.entries.push_back(
      Entry{Term(3), LogIndex(10), EntryType::ConfChange,
            JointConfChange{{{ConfChangeType::RemoveVoter, NodeId(2)},
                             {ConfChangeType::AddVoter, NodeId(5),
                              "server.5=[0:0:0:0:0:0:0:1]:2889:3889:participant;0.0.0.0:2182"}}}
                .encode()});
  const std::string f = encode(m).value();
  std::FILE* out = std::fopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  std::fwrite(f.data(), 1, f.size(), out);
  std::fclose(out);
}

}  // namespace
}  // namespace coord::consensus::codec
