-- 010: durable conversations and messages (written by kefu-relay's MySQL
-- writer from the Redis stream PREFIX wq; see ws-relay/persist.c).

CREATE TABLE IF NOT EXISTS `conversation` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `ws_key` char(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'the visitor key',
  `admin_id` int(11) unsigned NOT NULL DEFAULT 0 COMMENT 'the agent (the last one, if reassigned)',
  `visitor_ip` varchar(45) NOT NULL DEFAULT '',
  `started` int(11) unsigned NOT NULL DEFAULT 0,
  `ended` int(11) unsigned NOT NULL DEFAULT 0 COMMENT '0 while going on',
  `end_reason` varchar(32) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uniq_ws_key` (`ws_key`),
  KEY `idx_admin` (`admin_id`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `message` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) unsigned NOT NULL,
  `seq` int(11) unsigned NOT NULL,
  `sender_kind` enum('visitor','agent') NOT NULL,
  `sender_id` varchar(32) NOT NULL DEFAULT '' COMMENT 'admin id, or the visitor key',
  `content` text NOT NULL,
  `created` int(11) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uniq_conversation_seq` (`conversation_id`, `seq`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
