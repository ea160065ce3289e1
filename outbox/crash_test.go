package outbox

const crashChildEnv = "OUTBOX_CRASH_CHILD"

func crashChild() {}
