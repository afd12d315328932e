/*
 * interop_fastdds_peer: a salobj 7 Remote for OCPS index 1 written with
 * another DDS vendor, eProsima Fast DDS, against ocps-csc (Cyclone DDS).
 * Its types come from fastddsgen run on Rubin's own sal_revCoded_OCPS.idl
 * for ts_xml 12.0.0; its partitions and QoS are salobj 7's (ts_ddsconfig
 * profiles); discovery is unicast on loopback. It checks, in order:
 *   1. a heartbeat arrives (salIndex 1, revCode, identity "OCPS:1");
 *   2. summaryState and logLevel arrive for a reader created after the CSC
 *      reached DISABLED (late joiner), with salIndex 1;
 *   3. setLogLevel is acknowledged COMPLETE "Done", the ack matched on
 *      identity/origin/seqNum with salIndex 1, and logLevel follows;
 *   4. setLogLevel for salIndex 2 is ignored (no ack);
 *   5. enable, disable, enable: each COMPLETE and followed by summaryState;
 *   6. start in ENABLED fails: CMD_FAILED, error 1, "Failed: ..." reason;
 *   7. no ack is CMD_ACK (salobj 7 CSCs never send it).
 * With --as-csc it runs the other direction instead: Fast DDS is the CSC
 * (ackcmd for setLogLevel, logLevel and summaryState events) and our own
 * Remote, ocps-cmd over Cyclone, sends setLogLevel and shows summaryState.
 * Exits 0 when every check passes, 1 otherwise (each failure is printed).
 * Other arguments are passed on to ocps-csc.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <fastdds/dds/domain/DomainParticipant.hpp>
#include <fastdds/dds/domain/DomainParticipantFactory.hpp>
#include <fastdds/dds/publisher/DataWriter.hpp>
#include <fastdds/dds/publisher/Publisher.hpp>
#include <fastdds/dds/publisher/qos/DataWriterQos.hpp>
#include <fastdds/dds/subscriber/DataReader.hpp>
#include <fastdds/dds/subscriber/SampleInfo.hpp>
#include <fastdds/dds/subscriber/Subscriber.hpp>
#include <fastdds/dds/subscriber/qos/DataReaderQos.hpp>
#include <fastdds/dds/topic/Topic.hpp>
#include <fastdds/dds/topic/TypeSupport.hpp>
#include <fastdds/rtps/transport/UDPv4TransportDescriptor.h>
#include <fastrtps/utils/IPLocator.h>

#include "OCPS.h"
#include "OCPSPubSubTypes.h"
#include "peer_revcodes.h"

extern "C" {
#include "test_util.h"
}

/* Under AddressSanitizer (OCPS_SANITIZE): Debian's libfastrtps 2.9, not
 * instrumented, deletes an RTPSReader member with a size other than the one
 * it allocated (new-delete-type-mismatch in RTPSReader::~RTPSReader while
 * deleting a reader). That is Fast DDS's, not ours: not reported here;
 * everything else is, and ASAN_OPTIONS still overrides this. */
extern "C" const char *__asan_default_options();
extern "C" const char *__asan_default_options()
{
    return "new_delete_type_mismatch=0";
}

using namespace eprosima::fastdds::dds;
using eprosima::fastrtps::rtps::IPLocator;
using eprosima::fastrtps::rtps::Locator_t;

namespace
{

const int INDEX = 1;
const int ENABLED = 2, DISABLED = 1;
const int CMD_ACK = 300, CMD_COMPLETE = 303, CMD_FAILED = -302;

int failures = 0;

void check(bool ok, const std::string &what)
{
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    std::fflush(stdout);
    if (!ok) {
        failures++;
    }
}

double tai_now()
{
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    return tv.tv_sec + tv.tv_usec * 1e-6 + 37.0; /* TAI-UTC since 2017 */
}

enum Kind { COMMAND, ACKCMD, EVENT };

/* ts_ddsconfig v0.10.1 CommandProfile / AckcmdProfile / EventProfile. */
template <class Qos> void salobj_qos(Qos &q, Kind kind)
{
    q.reliability().kind = RELIABLE_RELIABILITY_QOS;
    q.reliability().max_blocking_time = eprosima::fastrtps::Duration_t(0, 100000000);
    q.durability().kind = kind == EVENT ? TRANSIENT_DURABILITY_QOS : VOLATILE_DURABILITY_QOS;
    q.history().kind = KEEP_LAST_HISTORY_QOS;
    q.history().depth = 100;
    q.ownership().kind = kind == ACKCMD ? EXCLUSIVE_OWNERSHIP_QOS : SHARED_OWNERSHIP_QOS;
    q.destination_order().kind = BY_RECEPTION_TIMESTAMP_DESTINATIONORDER_QOS;
}

class Peer
{
  public:
    DomainParticipant *participant = nullptr;
    Publisher *pub = nullptr;  /* cmd partition (Remote) or data (CSC) */
    Subscriber *sub = nullptr; /* data partition (Remote) or cmd (CSC) */
    std::string identity;
    int origin = static_cast<int>(getpid());
    int seq = 1000;
    unsigned nendpoints = 0;
    std::string db_path; /* the persistence service's SQLite file */

    /* as_csc: publish on the data partition and subscribe to the cmd one. */
    bool open(int domain, const std::string &prefix, bool as_csc)
    {
        DomainParticipantQos pq;
        pq.name("ocps-interop-fastdds");
        /* UDPv4 on loopback only: no shared memory (Cyclone does not speak
         * it), the Cyclone config's peers are 127.0.0.1 without multicast. */
        pq.transport().use_builtin_transports = false;
        auto udp = std::make_shared<eprosima::fastdds::rtps::UDPv4TransportDescriptor>();
        udp->interfaceWhiteList.push_back("127.0.0.1");
        pq.transport().user_transports.push_back(udp);
        /* The SPDP unicast port of every participant index Cyclone may take
         * (ParticipantIndex auto, at most 60): 7400 + 250 d + 10 + 2 i. */
        for (int i = 0; i <= 60; i++) {
            Locator_t loc;
            IPLocator::setIPv4(loc, 127, 0, 0, 1);
            loc.port = static_cast<uint32_t>(7400 + 250 * domain + 10 + 2 * i);
            pq.wire_protocol().builtin.initialPeersList.push_back(loc);
        }
        participant = DomainParticipantFactory::get_instance()->create_participant(domain, pq);
        if (participant == nullptr) {
            return false;
        }
        PublisherQos pubq;
        pubq.partition().push_back((prefix + (as_csc ? ".OCPS.data" : ".OCPS.cmd")).c_str());
        pubq.presentation().access_scope = INSTANCE_PRESENTATION_QOS;
        pub = participant->create_publisher(pubq);
        SubscriberQos subq;
        subq.partition().push_back((prefix + (as_csc ? ".OCPS.cmd" : ".OCPS.data")).c_str());
        subq.presentation().access_scope = INSTANCE_PRESENTATION_QOS;
        sub = participant->create_subscriber(subq);
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        identity = std::string("fastdds@") + host;
        return pub != nullptr && sub != nullptr;
    }

    /* The topic `OCPS_<name>_<rev>` of type `OCPS::<name>_<rev>`. */
    Topic *topic(TopicDataType *type, const std::string &name, const std::string &rev)
    {
        TypeSupport ts(type);
        std::string type_name = ts.get_type_name();
        check(type_name == "OCPS::" + name + "_" + rev, "type name " + type_name);
        if (participant->find_type(type_name) == nullptr) {
            ts.register_type(participant);
        }
        std::string topic_name = "OCPS_" + name + "_" + rev;
        TopicDescription *d = participant->lookup_topicdescription(topic_name);
        if (d != nullptr) {
            return static_cast<Topic *>(d);
        }
        return participant->create_topic(topic_name, type_name, TOPIC_QOS_DEFAULT);
    }

    /* Fast DDS creates a TRANSIENT endpoint only with a persistence
     * service (the role OpenSplice's durability service plays for salobj):
     * its SQLite plugin, in the test's directory, with a persistence GUID
     * of the endpoint's own. */
    template <class Qos> void persistence(Qos &q)
    {
        char guid[64];
        unsigned pid = static_cast<unsigned>(origin);
        std::snprintf(guid, sizeof guid, "6f.63.70.73.%02x.%02x.%02x.%02x.00.00.00.01|00.00.%02x.07",
                      (pid >> 24) & 0xff, (pid >> 16) & 0xff, (pid >> 8) & 0xff, pid & 0xff,
                      ++nendpoints & 0xff);
        auto &props = q.properties().properties();
        props.emplace_back("dds.persistence.plugin", "builtin.SQLITE3");
        props.emplace_back("dds.persistence.sqlite3.filename", db_path);
        props.emplace_back("dds.persistence.guid", guid);
    }

    /* A reader of the salobj profile of kind, with an optional listener. */
    DataReader *reader(Topic *t, Kind kind, DataReaderListener *listener = nullptr)
    {
        DataReaderQos q = DATAREADER_QOS_DEFAULT;
        salobj_qos(q, kind);
        if (kind == EVENT) {
            persistence(q);
        }
        DataReader *r = sub->create_datareader(t, q, listener);
        check(r != nullptr, "create the reader of " + t->get_name());
        return r;
    }

    /* A writer of the salobj profile of kind. */
    DataWriter *writer(Topic *t, Kind kind = COMMAND)
    {
        DataWriterQos q = DATAWRITER_QOS_DEFAULT;
        salobj_qos(q, kind);
        if (kind == EVENT) {
            persistence(q);
        }
        DataWriter *w = pub->create_datawriter(t, q);
        check(w != nullptr, "create the writer of " + t->get_name());
        return w;
    }

    void close()
    {
        if (participant != nullptr) {
            participant->delete_contained_entities();
            DomainParticipantFactory::get_instance()->delete_participant(participant);
            participant = nullptr;
        }
    }
};

/* Take samples of type T until pred accepts one or timeout seconds pass. */
template <class T> bool wait_for(DataReader *r, double timeout, const std::function<bool(const T &)> &pred)
{
    if (r == nullptr) {
        return false;
    }
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (std::chrono::steady_clock::now() < end) {
        T s;
        SampleInfo info;
        while (r->take_next_sample(&s, &info) == ReturnCode_t::RETCODE_OK) {
            if (info.valid_data && pred(s)) {
                return true;
            }
        }
        r->wait_for_unread_message(eprosima::fastrtps::Duration_t(0, 50000000));
    }
    return false;
}

/* Poll ok() every 20 ms until it holds (true) or `timeout` seconds pass. */
template <class F> bool poll_until(double timeout, F ok)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (std::chrono::steady_clock::now() < end) {
        if (ok()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

bool wait_matched(DataWriter *w, double timeout)
{
    PublicationMatchedStatus st;
    return w != nullptr && poll_until(timeout, [&] {
               return w->get_publication_matched_status(st) == ReturnCode_t::RETCODE_OK &&
                      st.current_count > 0;
           });
}

bool wait_reader_matched(DataReader *r, double timeout)
{
    SubscriptionMatchedStatus st;
    return r != nullptr && poll_until(timeout, [&] {
               return r->get_subscription_matched_status(st) == ReturnCode_t::RETCODE_OK &&
                      st.current_count > 0;
           });
}

/* Fill the private fields the way a salobj 7 Remote's write does. */
template <class T> void fill_command(Peer &p, T &c, const char *rev, int index)
{
    c.salIndex(index);
    c.private_revCode(rev);
    c.private_sndStamp(tai_now());
    c.private_rcvStamp(0.0);
    c.private_seqNum(++p.seq);
    c.private_identity(p.identity);
    c.private_origin(p.origin);
}

struct Ack {
    int ack = 0;
    int error = 0;
    std::string result;
};

int saw_cmd_ack = 0;

/* The final ack of command seqNum, matched as salobj's Remote does; false
 * if none within timeout. */
bool final_ack(Peer &p, DataReader *acks, int seq_num, double timeout, Ack &out)
{
    return wait_for<TYPE_ackcmd>(acks, timeout, [&](const TYPE_ackcmd &a) {
        if (a.salIndex() != INDEX || a.origin() != p.origin || a.identity() != p.identity ||
            a.private_seqNum() != seq_num) {
            return false;
        }
        if (a.ack() == CMD_ACK) {
            saw_cmd_ack++;
        }
        if (a.ack() == CMD_ACK || a.ack() == 301) {
            return false;
        }
        out.ack = a.ack();
        out.error = a.error();
        out.result = a.result();
        return true;
    });
}

template <class T>
bool send(Peer &p, DataWriter *w, DataReader *acks, const char *name, const char *rev, int index, Ack &out,
          double timeout, T cmd = T())
{
    fill_command(p, cmd, rev, index);
    if (!w->write(&cmd)) {
        check(false, std::string("write ") + name);
        return false;
    }
    return final_ack(p, acks, cmd.private_seqNum(), timeout, out);
}

bool summary_state_is(DataReader *r, int state, double timeout)
{
    return wait_for<TYPE_logevent_summaryState>(r, timeout, [&](const TYPE_logevent_summaryState &s) {
        return s.salIndex() == INDEX && s.summaryState() == state;
    });
}

int run(Peer &p)
{
    const double T = 15; /* generous on a loaded 2-core machine */
    /* 1. heartbeat */
    DataReader *hb = p.reader(
        p.topic(new PUBSUB_logevent_heartbeat(), "logevent_heartbeat", REV_logevent_heartbeat), EVENT);
    std::string hb_identity, hb_rev;
    bool got_hb = wait_for<TYPE_logevent_heartbeat>(hb, T, [&](const TYPE_logevent_heartbeat &h) {
        hb_identity = h.private_identity();
        hb_rev = h.private_revCode();
        return h.salIndex() == INDEX;
    });
    check(got_hb, "heartbeat received with salIndex 1");
    if (!got_hb) {
        return 1;
    }
    check(hb_rev == REV_logevent_heartbeat, "heartbeat private_revCode " + hb_rev);
    check(hb_identity == "OCPS:1", "heartbeat private_identity " + hb_identity);
    /* A second heartbeat: the CSC is past its start-up events by then. */
    wait_for<TYPE_logevent_heartbeat>(hb, 3, [](const TYPE_logevent_heartbeat &) { return true; });

    /* 2. late joiners */
    DataReader *ss = p.reader(
        p.topic(new PUBSUB_logevent_summaryState(), "logevent_summaryState", REV_logevent_summaryState),
        EVENT);
    DataReader *ll =
        p.reader(p.topic(new PUBSUB_logevent_logLevel(), "logevent_logLevel", REV_logevent_logLevel), EVENT);
    check(summary_state_is(ss, DISABLED, T), "late joiner: summaryState DISABLED with salIndex 1");
    int level = -1;
    check(wait_for<TYPE_logevent_logLevel>(ll, T,
                                           [&](const TYPE_logevent_logLevel &l) {
                                               level = l.level();
                                               return l.salIndex() == INDEX;
                                           }),
          "late joiner: logLevel with salIndex 1");
    check(level == 20, "logLevel level " + std::to_string(level));

    /* 3. commands and acks */
    DataReader *acks = p.reader(p.topic(new PUBSUB_ackcmd(), "ackcmd", REV_ackcmd), ACKCMD);
    DataWriter *set_log =
        p.writer(p.topic(new PUBSUB_command_setLogLevel(), "command_setLogLevel", REV_command_setLogLevel));
    DataWriter *enable = p.writer(p.topic(new PUBSUB_command_enable(), "command_enable", REV_command_enable));
    DataWriter *disable =
        p.writer(p.topic(new PUBSUB_command_disable(), "command_disable", REV_command_disable));
    DataWriter *start = p.writer(p.topic(new PUBSUB_command_start(), "command_start", REV_command_start));
    bool matched = wait_reader_matched(acks, T) && wait_matched(set_log, T) && wait_matched(enable, T) &&
                   wait_matched(disable, T) && wait_matched(start, T);
    check(matched, "ackcmd reader and command writers matched the CSC");
    if (!matched) {
        return 1;
    }

    /* Matching is seen by each side on its own: our writer matched the
     * CSC's reader does not mean the CSC's (VOLATILE) reader has matched
     * our writer yet, and until it has, Cyclone drops the sample for good
     * (1 run in 20 on this machine). A salobj Remote has the same race and
     * sends its first command seconds after start. So wait for the CSC's
     * side: setLogLevel(20), the current level (no event), once a second
     * until one is acked; the other command writers, created at the same
     * time, are discovered with it, seconds before their use. */
    Ack a;
    TYPE_command_setLogLevel lvl;
    lvl.level(20);
    int probes = 0;
    bool settled = false;
    while (!settled && probes < 15) {
        probes++;
        settled = send(p, set_log, acks, "setLogLevel", REV_command_setLogLevel, INDEX, a, 1, lvl);
    }
    check(settled && a.ack == CMD_COMPLETE, "setLogLevel(20) acked COMPLETE after " + std::to_string(probes) +
                                                " send(s) (CSC matched our writer)");
    lvl.level(10);
    bool acked = send(p, set_log, acks, "setLogLevel", REV_command_setLogLevel, INDEX, a, T, lvl);
    check(acked && a.ack == CMD_COMPLETE && a.error == 0 && a.result == "Done",
          "setLogLevel(10): ack " + std::to_string(a.ack) + " \"" + a.result + "\"");
    check(
        wait_for<TYPE_logevent_logLevel>(
            ll, T, [](const TYPE_logevent_logLevel &l) { return l.salIndex() == INDEX && l.level() == 10; }),
        "logLevel 10 follows setLogLevel");

    /* 4. another index: salobj's CSC reads only salIndex == its index. */
    Ack other;
    lvl.level(30);
    check(!send(p, set_log, acks, "setLogLevel", REV_command_setLogLevel, INDEX + 1, other, 2, lvl),
          "setLogLevel for salIndex 2 ignored (no ack in 2 s)");

    /* 5. state transitions */
    struct Step {
        DataWriter *w;
        const char *name;
        const char *rev;
        int state;
    } steps[] = {{enable, "enable", REV_command_enable, ENABLED},
                 {disable, "disable", REV_command_disable, DISABLED},
                 {enable, "enable", REV_command_enable, ENABLED}};
    for (const Step &s : steps) {
        Ack sa;
        bool ok;
        if (s.w == enable) {
            ok = send<TYPE_command_enable>(p, s.w, acks, s.name, s.rev, INDEX, sa, T);
        } else {
            ok = send<TYPE_command_disable>(p, s.w, acks, s.name, s.rev, INDEX, sa, T);
        }
        check(ok && sa.ack == CMD_COMPLETE && sa.result == "Done",
              std::string(s.name) + ": ack " + std::to_string(sa.ack) + " \"" + sa.result + "\"");
        check(summary_state_is(ss, s.state, T),
              std::string("summaryState ") + std::to_string(s.state) + " after " + s.name);
    }

    /* 6. a transition the state machine refuses */
    Ack bad;
    bool got_bad = send<TYPE_command_start>(p, start, acks, "start", REV_command_start, INDEX, bad, T);
    check(got_bad && bad.ack == CMD_FAILED && bad.error == 1 && bad.result.rfind("Failed: ", 0) == 0,
          "start in ENABLED: ack " + std::to_string(bad.ack) + " error " + std::to_string(bad.error) + " \"" +
              bad.result + "\"");
    check(!summary_state_is(ss, DISABLED, 1), "no summaryState change after the refused start");

    /* 7. */
    check(saw_cmd_ack == 0, "no CMD_ACK (salobj 7 CSCs never send it)");
    return failures == 0 ? 0 : 1;
}

/* --as-csc: the other direction. Fast DDS is the CSC (OCPS index 1): it
 * answers setLogLevel with ackcmd COMPLETE (identity, origin and seqNum of
 * the command copied back) and a logLevel event, and writes summaryState
 * DISABLED every 0.5 s; our own Remote, ocps-cmd over Cyclone, commands it
 * and reads the event. */
/* The private fields of a sample the Fast DDS CSC writes (as salobj's). */
template <class T> void fill_csc_private(T &s, const char *rev, int seq)
{
    s.salIndex(INDEX);
    s.private_revCode(rev);
    s.private_sndStamp(tai_now());
    s.private_seqNum(seq);
    s.private_identity("OCPS:1");
    s.private_origin(static_cast<int>(getpid()));
}

class FakeCsc : public DataReaderListener
{
  public:
    DataWriter *ack = nullptr;
    DataWriter *log_level = nullptr;
    std::atomic<int> level{-1};
    std::atomic<int> seq{0};
    std::mutex mutex;
    std::string cmd_identity; /* of the last setLogLevel, under mutex */

    std::string identity()
    {
        std::lock_guard<std::mutex> lock(mutex);
        return cmd_identity;
    }

    void on_data_available(DataReader *r) override
    {
        TYPE_command_setLogLevel c;
        SampleInfo info;
        while (r->take_next_sample(&c, &info) == ReturnCode_t::RETCODE_OK) {
            if (!info.valid_data || c.salIndex() != INDEX || c.private_seqNum() <= 0) {
                continue;
            }
            TYPE_logevent_logLevel l;
            fill_csc_private(l, REV_logevent_logLevel, ++seq);
            l.level(c.level());
            log_level->write(&l);
            TYPE_ackcmd a;
            fill_csc_private(a, REV_ackcmd, c.private_seqNum());
            a.ack(CMD_COMPLETE);
            a.error(0);
            a.result("Done");
            a.identity(c.private_identity().to_string());
            a.origin(c.private_origin());
            {
                std::lock_guard<std::mutex> lock(mutex);
                cmd_identity = c.private_identity().to_string();
            }
            level = c.level();
            ack->write(&a);
        }
    }
};

int run_as_csc(Peer &p)
{
    FakeCsc csc;
    csc.ack = p.writer(p.topic(new PUBSUB_ackcmd(), "ackcmd", REV_ackcmd), ACKCMD);
    csc.log_level =
        p.writer(p.topic(new PUBSUB_logevent_logLevel(), "logevent_logLevel", REV_logevent_logLevel), EVENT);
    DataWriter *ss = p.writer(
        p.topic(new PUBSUB_logevent_summaryState(), "logevent_summaryState", REV_logevent_summaryState),
        EVENT);
    DataReader *cmd =
        p.reader(p.topic(new PUBSUB_command_setLogLevel(), "command_setLogLevel", REV_command_setLogLevel),
                 COMMAND, &csc);
    if (csc.ack == nullptr || csc.log_level == nullptr || ss == nullptr || cmd == nullptr) {
        return 1;
    }
    std::atomic<bool> stop{false};
    std::thread state([&] {
        int n = 0;
        while (!stop) {
            TYPE_logevent_summaryState s;
            fill_csc_private(s, REV_logevent_summaryState, ++n);
            s.summaryState(DISABLED);
            ss->write(&s);
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
    });
    char *out = nullptr;
    const char *set_argv[] = {
        OCPS_CMD,     "--xml-version", "12.0.0", "--transport", "dds",     "--timeout", "10",
        "--identity", "fastdds-test",  "OCPS:1", "setLogLevel", "--level", "10",        nullptr};
    int st = tu_run(const_cast<char *const *>(set_argv), &out);
    check(st == 0 && csc.level == 10 && csc.identity() == "fastdds-test",
          "ocps-cmd setLogLevel --level 10: exit " + std::to_string(st) + ", level " +
              std::to_string(csc.level) + " from \"" + csc.identity() + "\"");
    if (st != 0) {
        std::printf("%s\n", out != nullptr ? out : "");
    }
    std::free(out);
    out = nullptr;
    const char *show_argv[] = {OCPS_CMD, "--xml-version", "12.0.0", "--transport", "dds", "OCPS:1",
                               "show",   "summaryState",  "--json", "--timeout",   "10",  nullptr};
    st = tu_run(const_cast<char *const *>(show_argv), &out);
    std::string shown = out != nullptr ? out : "";
    std::free(out);
    check(st == 0 && shown.find("\"summaryState\":1") != std::string::npos &&
              shown.find("\"salIndex\":1") != std::string::npos,
          "ocps-cmd show summaryState: exit " + std::to_string(st) + ": " + shown);
    stop = true;
    state.join();
    return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv_in)
{
    char uri[1024];
    std::snprintf(uri, sizeof uri, "file://%s", CYCLONE_CONFIG);
    setenv("CYCLONEDDS_URI", uri, 1);
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "fastdds%d", static_cast<int>(getpid()));
    setenv("LSST_DDS_PARTITION_PREFIX", prefix, 1);
    setenv("LSST_SITE", "test", 1);
    const char *dom = std::getenv("LSST_DDS_DOMAIN_ID");
    int domain = dom != nullptr ? std::atoi(dom) : 0;

    char *root = tu_make_ocps_config();
    if (root == nullptr) {
        std::fprintf(stderr, "cannot make a configuration\n");
        return 1;
    }
    std::string site = std::string("work_root: ") + root + "/jobs\n";
    tu_write_ocps_site(root, site.c_str());
    setenv("DM_CONFIG_OCPS_DIR", root, 1);

    bool as_csc = argc > 1 && std::strcmp(argv_in[1], "--as-csc") == 0;
    if (as_csc) {
        Peer p;
        p.db_path = std::string(root) + "/fastdds-persistence.db";
        double t0 = tu_now();
        int rc = p.open(domain, prefix, true) ? run_as_csc(p) : 1;
        std::printf("%s after %.1f s\n", rc == 0 ? "passed" : "FAILED", tu_now() - t0);
        p.close();
        tu_remove_tree(root);
        std::free(root);
        return rc;
    }

    /* ocps-csc's options; any arguments of this program are added (for
     * example --no-republish, to see the late-joiner check fail). */
    std::vector<std::string> args = {OCPS_CSC, "--xml-version", "12.0.0",   "--transport",
                                     "dds",    "--state",       "disabled", "--duplicate-check",
                                     "0.2"};
    for (int i = 1; i < argc; i++) {
        args.push_back(argv_in[i]);
    }
    args.push_back("1");
    std::vector<char *> argv;
    for (std::string &a : args) {
        argv.push_back(&a[0]);
    }
    argv.push_back(nullptr);
    int pid = tu_spawn(argv.data(), nullptr);
    int rc = 1;
    double t0 = tu_now();
    Peer p;
    p.db_path = std::string(root) + "/fastdds-persistence.db";
    if (pid <= 0) {
        std::fprintf(stderr, "cannot start %s\n", OCPS_CSC);
    } else if (!p.open(domain, prefix, false)) {
        std::fprintf(stderr, "cannot create the Fast DDS participant\n");
    } else {
        rc = run(p);
    }
    std::printf("%s after %.1f s\n", rc == 0 ? "passed" : "FAILED", tu_now() - t0);
    std::fflush(stdout);
    /* The CSC first: nothing in Fast DDS's teardown can leave it running. */
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (tu_wait_exit(pid, 5) < 0) {
            tu_kill(pid);
        }
    }
    p.close();
    tu_remove_tree(root);
    std::free(root);
    return rc;
}
