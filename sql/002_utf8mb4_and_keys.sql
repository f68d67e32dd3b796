-- 002: bring a database created by the seed (utf8, 3-byte) to utf8mb4 and
-- add the unique username key kefu relies on.  On a database created by 001
-- these statements change nothing.

ALTER TABLE `admin` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER TABLE `admin_role` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER TABLE `admin_auth` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER TABLE `admin_auth_map` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER TABLE `taskqueue` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER TABLE `admin` ADD UNIQUE KEY IF NOT EXISTS `uniq_username` (`username`);
ALTER TABLE `admin` ADD KEY IF NOT EXISTS `idx_role` (`role`);
