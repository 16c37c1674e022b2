package service

import "strings"

// cpeVendors names the products whose CPE 2.3 vendor and product fields
// are known, from the NVD's CPE dictionary.
var cpeVendors = map[string]string{
	"OpenSSH":                    "openbsd:openssh",
	"Dropbear sshd":              "dropbear_ssh_project:dropbear_ssh",
	"nginx":                      "f5:nginx",
	"Apache httpd":               "apache:http_server",
	"lighttpd":                   "lighttpd:lighttpd",
	"Redis":                      "redis:redis",
	"memcached":                  "memcached:memcached",
	"PostgreSQL":                 "postgresql:postgresql",
	"MariaDB":                    "mariadb:mariadb",
	"MySQL":                      "oracle:mysql",
	"Mosquitto":                  "eclipse:mosquitto",
	"vsftpd":                     "beasts:vsftpd",
	"ProFTPD":                    "proftpd:proftpd",
	"Pure-FTPd":                  "pureftpd:pure-ftpd",
	"Dovecot":                    "dovecot:dovecot",
	"Exim":                       "exim:exim",
	"Postfix":                    "postfix:postfix",
	"OpenSMTPD":                  "openbsd:opensmtpd",
	"Sendmail":                   "sendmail:sendmail",
	"OpenLDAP":                   "openldap:openldap",
	"dnsmasq":                    "thekelleys:dnsmasq",
	"BIND":                       "isc:bind",
	"Unbound":                    "nlnetlabs:unbound",
	"rsync":                      "samba:rsync",
	"ntpsec":                     "ntpsec:ntpsec",
	"ntpd":                       "ntp:ntp",
	"Net-SNMP":                   "net-snmp:net-snmp",
	"MongoDB":                    "mongodb:mongodb",
	"Elasticsearch":              "elastic:elasticsearch",
	"OpenSearch":                 "amazon:opensearch",
	"Apache ZooKeeper":           "apache:zookeeper",
	"Apache Kafka":               "apache:kafka",
	"Apache Cassandra":           "apache:cassandra",
	"Microsoft SQL Server":       "microsoft:sql_server",
	"RabbitMQ":                   "vmware:rabbitmq",
	"NATS Server":                "linuxfoundation:nats-server",
	"Consul":                     "hashicorp:consul",
	"etcd":                       "etcd-io:etcd",
	"Kubernetes API server":      "kubernetes:kubernetes",
	"Docker Engine API":          "docker:engine",
	"Microsoft Active Directory": "microsoft:active_directory",
}

// cpeFor is the CPE 2.3 formatted string (NISTIR 7695 §6.2) of product
// at version ("*", any, when not known); "" for a product not in the
// table.
func cpeFor(product, version string) string {
	vp, ok := cpeVendors[product]
	if !ok {
		return ""
	}
	v := "*"
	if version != "" {
		v = cpeEscape(version)
	}
	return "cpe:2.3:a:" + vp + ":" + v + ":*:*:*:*:*:*:*"
}

// cpeEscape quotes the characters a formatted string's attribute may not
// hold as they are (NISTIR 7695 §6.2.2.2): all but letters, digits,
// '_', '-' and '.'.
func cpeEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('\\')
			b.WriteRune(c)
		}
	}
	return strings.ToLower(b.String())
}
