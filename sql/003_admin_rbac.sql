-- 003: administration and RBAC.
--  * app_lock: one row per lock name; every administrative change takes
--    the 'admin' row FOR UPDATE, so that changes to accounts, roles,
--    permissions and grants run one at a time in every process (and the
--    last account able to reach /admin/** cannot be removed by two
--    requests at once).
--  * The columns a database created by the seed left nullable get the
--    definitions of 001, so a migrated seed database and a new one are
--    alike: NULL texts become '' (a NULL method or path matched nothing in
--    the seed and matches nothing now), a NULL enable becomes 0 (the seed
--    treated it as disabled), NULL times 0.
--  * An index to find the roles holding a permission.
-- Every statement may run again and then changes nothing.

CREATE TABLE IF NOT EXISTS `app_lock` (
  `name` varchar(32) NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT IGNORE INTO `app_lock` (`name`) VALUES ('admin');

UPDATE `admin` SET `create_time` = 0 WHERE `create_time` IS NULL;
ALTER TABLE `admin`
  MODIFY `create_time` int(11) unsigned NOT NULL DEFAULT 0;

UPDATE `admin_role` SET `name` = '' WHERE `name` IS NULL;
UPDATE `admin_role` SET `describe` = '' WHERE `describe` IS NULL;
UPDATE `admin_role` SET `create_time` = 0 WHERE `create_time` IS NULL;
ALTER TABLE `admin_role`
  MODIFY `name` varchar(60) NOT NULL DEFAULT '',
  MODIFY `describe` varchar(100) NOT NULL DEFAULT '',
  MODIFY `create_time` int(11) unsigned NOT NULL DEFAULT 0;

UPDATE `admin_auth` SET `name` = '' WHERE `name` IS NULL;
UPDATE `admin_auth` SET `method` = '' WHERE `method` IS NULL;
UPDATE `admin_auth` SET `path` = '' WHERE `path` IS NULL;
UPDATE `admin_auth` SET `enable` = 0 WHERE `enable` IS NULL;
UPDATE `admin_auth` SET `create_time` = 0 WHERE `create_time` IS NULL;
ALTER TABLE `admin_auth`
  MODIFY `name` varchar(60) NOT NULL DEFAULT '',
  MODIFY `method` varchar(20) NOT NULL DEFAULT '*',
  MODIFY `path` varchar(200) NOT NULL DEFAULT '',
  MODIFY `enable` tinyint(1) NOT NULL DEFAULT 1,
  MODIFY `create_time` int(11) unsigned NOT NULL DEFAULT 0;

ALTER TABLE `admin_auth_map`
  MODIFY `create_time` int(11) unsigned NOT NULL DEFAULT 0,
  ADD KEY IF NOT EXISTS `idx_auth` (`auth`);
