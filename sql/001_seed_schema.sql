-- 001: the seed's tables (gin_websocket sample.sql), in utf8mb4.
-- Times are Unix seconds, as in the seed.  CREATE ... IF NOT EXISTS so that
-- a database created by the seed is taken over as it is; 002 converts it.

CREATE TABLE IF NOT EXISTS `admin` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `username` varchar(60) NOT NULL,
  `password` varchar(120) DEFAULT NULL,
  `name` varchar(60) DEFAULT NULL,
  `role` int(11) unsigned NOT NULL,
  `create_time` int(11) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `admin_role` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(60) NOT NULL DEFAULT '',
  `describe` varchar(100) NOT NULL DEFAULT '',
  `create_time` int(11) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `admin_auth` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(60) NOT NULL DEFAULT '',
  `method` varchar(20) NOT NULL DEFAULT '*',
  `path` varchar(200) NOT NULL DEFAULT '',
  `enable` tinyint(1) NOT NULL DEFAULT 1,
  `parent_id` int(11) unsigned DEFAULT NULL,
  `create_time` int(11) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `admin_auth_map` (
  `role` int(11) unsigned NOT NULL,
  `auth` int(11) unsigned NOT NULL,
  `create_time` int(11) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`role`, `auth`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `taskqueue` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `type` varchar(120) NOT NULL DEFAULT '',
  `param` text,
  `fail_msg` text,
  `status` tinyint(3) unsigned NOT NULL DEFAULT 0 COMMENT '0 waiting, 1 running',
  `retry_times` int(11) unsigned NOT NULL DEFAULT 0,
  `create_time` int(11) unsigned NOT NULL DEFAULT 0,
  `begin_time` int(11) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `begin_time` (`begin_time`, `status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The seed's rows: role 1 and permissions 1 and 2, held by role 1.  Its
-- admin row is not shipped: nobody should run with a published password
-- (create the first admin with `kefuctl admin add`).
INSERT IGNORE INTO `admin_role` (`id`, `name`, `describe`, `create_time`)
  VALUES (1, '管理员', '最高权限', UNIX_TIMESTAMP());
INSERT IGNORE INTO `admin_auth` (`id`, `name`, `method`, `path`, `enable`, `parent_id`, `create_time`)
  VALUES (1, '最高权限', '*', '/admin/**', 1, NULL, UNIX_TIMESTAMP()),
         (2, 'api最高权限', '*', '/api/**', 1, NULL, UNIX_TIMESTAMP());
INSERT IGNORE INTO `admin_auth_map` (`role`, `auth`, `create_time`)
  VALUES (1, 1, UNIX_TIMESTAMP()), (1, 2, UNIX_TIMESTAMP());
