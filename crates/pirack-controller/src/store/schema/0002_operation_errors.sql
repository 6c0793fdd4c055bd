-- A failed operation's stable error code (`power_failed`, `root_failed`, ...), for
-- programs; the detail stays the message for people.
ALTER TABLE operations ADD COLUMN error TEXT;
