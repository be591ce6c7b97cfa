//! A logger wrapper that demotes one fuser message to debug: "Failed to send FUSE
//! reply: No such file or directory". The kernel answers a reply with ENOENT when it no
//! longer waits for that request, which is what happens to a request in flight when the
//! mount goes away (a signalled unmount races the last RELEASE); libfuse ignores that
//! errno for this reason. fuser logs it at ERROR, so every clean shutdown could print
//! an ERROR line. Any other failed reply keeps its level.

use log::{Level, Log, Metadata, Record};

pub(crate) struct QuietFuser<L>(pub L);

impl<L: Log> Log for QuietFuser<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !is_reply_to_a_gone_request(record) {
            return self.0.log(record);
        }
        let demoted = Record::builder()
            .level(Level::Debug)
            .target(record.target())
            .args(*record.args())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        if self.0.enabled(demoted.metadata()) {
            self.0.log(&demoted);
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

fn is_reply_to_a_gone_request(record: &Record) -> bool {
    record.level() <= Level::Warn
        && record.target() == "fuser::reply"
        && is_gone_reply_message(&record.args().to_string())
}

fn is_gone_reply_message(msg: &str) -> bool {
    msg.starts_with("Failed to send FUSE reply") && msg.ends_with("(os error 2)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enoent_replies_are_demoted() {
        let enoent = std::io::Error::from_raw_os_error(2);
        assert!(is_gone_reply_message(&format!(
            "Failed to send FUSE reply: {enoent}"
        )));
        let einval = std::io::Error::from_raw_os_error(22);
        assert!(!is_gone_reply_message(&format!(
            "Failed to send FUSE reply: {einval}"
        )));
        assert!(!is_gone_reply_message("Reply not sent for operation 4"));
    }
}
