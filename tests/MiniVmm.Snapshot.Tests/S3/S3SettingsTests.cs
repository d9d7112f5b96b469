using MiniVmm.Snapshot.S3;

namespace MiniVmm.Snapshot.Tests.S3;

/// <summary>
/// S3Settings.Resolve against an injected environment, home and files: each step of the AWS CLI's order, the overrides,
/// and every malformed input as an ArgumentException that names the file and profile and never a secret.
/// </summary>
public sealed class S3SettingsTests
{
    private const string Home = "/home/u";
    private const string CredentialsPath = "/home/u/.aws/credentials";
    private const string ConfigPath = "/home/u/.aws/config";
    private const string Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET";

    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unreadable = new(StringComparer.Ordinal);

    private S3ConfigSources Sources => new(
        name => _env.GetValueOrDefault(name),
        path => _unreadable.Contains(path) ? throw new UnauthorizedAccessException($"Access to the path '{path}' is denied.")
            : _files.GetValueOrDefault(path),
        Home);

    private S3Settings Resolve(string? profile = null, string? endpoint = null) => S3Settings.Resolve(new S3Overrides(profile, endpoint), Sources);

    private ArgumentException Fails(string? profile = null, string? endpoint = null)
    {
        var e = Assert.Throws<ArgumentException>(() => Resolve(profile, endpoint));
        e.Message.Should().NotContain(Secret).And.NotContain("SESSIONTOKEN");
        return e;
    }

    private void EnvKeys(string key = "ENVKEY", string secret = Secret)
    {
        _env["AWS_ACCESS_KEY_ID"] = key;
        _env["AWS_SECRET_ACCESS_KEY"] = secret;
    }

    private void Credentials(string text) => _files[CredentialsPath] = text;
    private void Config(string text) => _files[ConfigPath] = text;

    // --- the environment alone (as before) ---

    [Fact]
    public void The_environment_alone_gives_everything_and_no_file_is_needed()
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://rgw:7480";
        var s = Resolve();
        s.Should().Be(new S3Settings("http://rgw:7480", "ENVKEY", Secret, "us-east-1") { CredentialSource = "environment" });
        s.SessionToken.Should().BeNull();
    }

    [Fact]
    public void The_session_token_comes_with_the_environments_keys()
    {
        EnvKeys();
        _env["AWS_SESSION_TOKEN"] = "SESSIONTOKEN";
        _env["AWS_ENDPOINT_URL"] = "http://rgw:7480";
        Resolve().SessionToken.Should().Be("SESSIONTOKEN");
    }

    [Fact]
    public void FromEnvironment_is_Resolve_without_overrides()
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL_S3"] = "https://s3.example";
        // FromEnvironment reads this process's files; with a home that has none it is the environment only.
        var s = S3Settings.FromEnvironment(name => name == "HOME" ? "/nonexistent" : _env.GetValueOrDefault(name));
        s.Endpoint.Should().Be("https://s3.example");
        s.AccessKey.Should().Be("ENVKEY");
    }

    [Theory]
    [InlineData("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY is not")]
    [InlineData("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID is not")]
    public void Half_of_the_environments_keys_is_an_error(string onlyThis, string message)
    {
        _env[onlyThis] = Secret;
        _env["AWS_ENDPOINT_URL"] = "http://rgw:7480";
        Fails().Message.Should().Contain(message);
    }

    // --- the profile files ---

    [Fact]
    public void Without_environment_keys_the_default_profile_of_the_files_is_used()
    {
        Credentials($"[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = {Secret}\naws_session_token = SESSIONTOKEN\n");
        Config("[default]\nregion = eu-west-3\nendpoint_url = https://store.example:8443\n");
        var s = Resolve();
        s.Endpoint.Should().Be("https://store.example:8443");
        s.AccessKey.Should().Be("FILEKEY");
        s.SecretKey.Should().Be(Secret);
        s.SessionToken.Should().Be("SESSIONTOKEN");
        s.Region.Should().Be("eu-west-3");
        s.CredentialSource.Should().Be($"profile 'default' in {CredentialsPath}");
    }

    [Fact]
    public void AWS_PROFILE_names_the_profile_and_the_config_file_spells_it_profile_NAME()
    {
        _env["AWS_PROFILE"] = "ceph";
        Credentials($"[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[ceph]\naws_access_key_id = CEPHKEY\naws_secret_access_key = {Secret}\n");
        Config("[default]\nendpoint_url = http://wrong\n[profile ceph]\nendpoint_url = http://ceph:7480\nregion = moon-1\n");
        var s = Resolve();
        (s.AccessKey, s.Endpoint, s.Region).Should().Be(("CEPHKEY", "http://ceph:7480", "moon-1"));
    }

    [Fact]
    public void The_s3_sub_section_endpoint_wins_over_the_profiles_endpoint_url()
    {
        Credentials($"[default]\naws_access_key_id = K\naws_secret_access_key = {Secret}\n");
        Config("[default]\nendpoint_url = http://general\ns3 =\n  endpoint_url = http://s3-only:7480\n  addressing_style = path\nregion = r1\n");
        var s = Resolve();
        s.Endpoint.Should().Be("http://s3-only:7480");
        s.Region.Should().Be("r1");
    }

    [Fact]
    public void Keys_in_the_config_file_serve_when_the_credentials_file_lacks_the_profile()
    {
        Config($"# comment\n; another\n[profile only-config]\naws_access_key_id = CFGKEY\naws_secret_access_key = {Secret}\nendpoint_url = http://x\n");
        var s = Resolve(profile: "only-config");
        s.AccessKey.Should().Be("CFGKEY");
        s.CredentialSource.Should().Be($"profile 'only-config' in {ConfigPath}");
    }

    [Fact]
    public void The_file_variables_move_the_files_and_tilde_is_the_home()
    {
        _env["AWS_SHARED_CREDENTIALS_FILE"] = "~/elsewhere/creds";
        _env["AWS_CONFIG_FILE"] = "/etc/aws-config";
        _files["/home/u/elsewhere/creds"] = $"[default]\naws_access_key_id = MOVED\naws_secret_access_key = {Secret}\n";
        _files["/etc/aws-config"] = "[default]\nendpoint_url = http://moved\n";
        Credentials("[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n");
        var s = Resolve();
        (s.AccessKey, s.Endpoint).Should().Be(("MOVED", "http://moved"));
    }

    [Fact]
    public void Windows_line_ends_and_whitespace_around_keys_are_accepted()
    {
        Credentials($"[default]\r\n  aws_access_key_id=K  \r\naws_secret_access_key   =   {Secret}\r\n");
        Config("[default]\r\nendpoint_url = http://crlf\r\n");
        // An indented first key has nothing to be a sub-section of: refused (below); unindented it works.
        Fails().Message.Should().Contain("line 2");
        Credentials($"[default]\r\naws_access_key_id=K  \r\naws_secret_access_key   =   {Secret}\r\n");
        var s = Resolve();
        (s.AccessKey, s.SecretKey, s.Endpoint).Should().Be(("K", Secret, "http://crlf"));
    }

    // --- the order between the sources ---

    [Fact]
    public void Environment_keys_win_over_the_AWS_PROFILE_profile()
    {
        EnvKeys();
        _env["AWS_PROFILE"] = "p";
        Credentials($"[p]\naws_access_key_id = FILEKEY\naws_secret_access_key = {Secret}\n");
        Config("[profile p]\nendpoint_url = http://p\n");
        var s = Resolve();
        s.AccessKey.Should().Be("ENVKEY");
        s.Endpoint.Should().Be("http://p", "the profile still gives what the environment lacks");
    }

    [Fact]
    public void The_s3_profile_option_wins_over_AWS_PROFILE_and_over_environment_keys()
    {
        EnvKeys();
        _env["AWS_PROFILE"] = "p";
        _env["AWS_SESSION_TOKEN"] = "SESSIONTOKEN";
        Credentials($"[p]\naws_access_key_id = PKEY\naws_secret_access_key = WRONG\n[q]\naws_access_key_id = QKEY\naws_secret_access_key = {Secret}\n");
        Config("[profile q]\nendpoint_url = http://q\n");
        var s = Resolve(profile: "q");
        (s.AccessKey, s.SessionToken, s.Endpoint).Should().Be(("QKEY", null, "http://q"));
    }

    [Fact]
    public void Endpoint_order_is_option_then_AWS_ENDPOINT_URL_S3_then_AWS_ENDPOINT_URL_then_the_profile()
    {
        EnvKeys();
        Config("[default]\nendpoint_url = http://profile\ns3 =\n  endpoint_url = http://profile-s3\n");
        Resolve().Endpoint.Should().Be("http://profile-s3");
        _env["AWS_ENDPOINT_URL"] = "http://env-any";
        Resolve().Endpoint.Should().Be("http://env-any");
        _env["AWS_ENDPOINT_URL_S3"] = "http://env-s3";
        Resolve().Endpoint.Should().Be("http://env-s3");
        Resolve(endpoint: "https://option").Endpoint.Should().Be("https://option");
    }

    [Fact]
    public void Region_order_is_AWS_REGION_then_AWS_DEFAULT_REGION_then_the_profile_then_us_east_1()
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Resolve().Region.Should().Be("us-east-1");
        Config("[default]\nregion = from-profile\n");
        Resolve().Region.Should().Be("from-profile");
        _env["AWS_DEFAULT_REGION"] = "from-default-region";
        Resolve().Region.Should().Be("from-default-region");
        _env["AWS_REGION"] = "from-region";
        Resolve().Region.Should().Be("from-region");
    }

    [Fact]
    public void Empty_variables_count_as_unset()
    {
        _env["AWS_PROFILE"] = "";
        _env["AWS_ACCESS_KEY_ID"] = "";
        _env["AWS_ENDPOINT_URL_S3"] = "";
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Credentials($"[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = {Secret}\n");
        var s = Resolve();
        (s.AccessKey, s.Endpoint).Should().Be(("FILEKEY", "http://e"));
    }

    // --- what is missing ---

    [Fact]
    public void No_credentials_anywhere_names_the_profile_and_both_files()
    {
        _env["AWS_ENDPOINT_URL"] = "http://e";
        var e = Fails();
        e.Message.Should().Contain("AWS_ACCESS_KEY_ID").And.Contain("profile 'default'").And.Contain(CredentialsPath).And.Contain(ConfigPath)
            .And.Contain("does not exist");
    }

    [Fact]
    public void No_endpoint_anywhere_lists_where_one_may_be_given()
    {
        EnvKeys();
        Fails().Message.Should().Contain("--s3-endpoint").And.Contain("AWS_ENDPOINT_URL_S3").And.Contain("endpoint_url").And.Contain("profile 'default'");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_named_profile_that_is_in_neither_file_is_an_error_even_with_environment_keys(bool byOption)
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Credentials("[default]\naws_access_key_id = K\naws_secret_access_key = S\n");
        if (!byOption) _env["AWS_PROFILE"] = "typo";
        var e = Fails(profile: byOption ? "typo" : null);
        e.Message.Should().Contain("profile 'typo'").And.Contain(CredentialsPath).And.Contain(ConfigPath).And.Contain("does not exist");
    }

    [Fact]
    public void A_profile_without_keys_says_so_and_names_what_it_uses_instead()
    {
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Config("[profile sso]\nsso_session = corp\nregion = r\n[sso-session corp]\nsso_start_url = https://x\n");
        var e = Fails(profile: "sso");
        e.Message.Should().Contain("profile 'sso'").And.Contain("no aws_access_key_id").And.Contain("sso_session");
    }

    [Fact]
    public void A_secret_without_an_access_key_names_the_file_and_profile()
    {
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Credentials($"[dev]\naws_secret_access_key = {Secret}\n");
        Fails(profile: "dev").Message.Should().Be($"profile 'dev' in {CredentialsPath} has aws_secret_access_key but no aws_access_key_id");
    }

    [Fact]
    public void An_access_key_without_a_secret_names_the_file_and_profile()
    {
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Credentials("[dev]\naws_access_key_id = K\naws_session_token = SESSIONTOKEN\n");
        Fails(profile: "dev").Message.Should().Be($"profile 'dev' in {CredentialsPath} has aws_access_key_id but no aws_secret_access_key");
    }

    [Theory]
    [InlineData("aws_access_key_id =\naws_secret_access_key = " + Secret, "aws_access_key_id has no value")]
    [InlineData("aws_access_key_id = K\naws_secret_access_key =", "aws_secret_access_key has no value")]
    [InlineData("aws_access_key_id = K\naws_secret_access_key = " + Secret + "\naws_session_token = ", "aws_session_token has no value")]
    public void A_key_without_a_value_names_the_key_file_and_profile(string body, string message)
    {
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Credentials("[default]\n" + body + "\n");
        Fails().Message.Should().Contain(message).And.Contain($"profile 'default' in {CredentialsPath}");
    }

    [Fact]
    public void An_endpoint_url_without_a_value_in_the_config_is_an_error()
    {
        EnvKeys();
        Config("[default]\nendpoint_url =\n");
        Fails().Message.Should().Contain("endpoint_url has no value").And.Contain(ConfigPath);
    }

    [Fact]
    public void A_bad_endpoint_names_where_it_came_from()
    {
        EnvKeys();
        Config("[default]\nendpoint_url = ftp://nope\n");
        Fails().Message.Should().Contain("endpoint_url of profile 'default'").And.Contain("ftp://nope").And.Contain("http(s)");
        Fails(endpoint: "not a url").Message.Should().StartWith("--s3-endpoint:");
        _env["AWS_ENDPOINT_URL"] = "rgw:7480";
        Fails().Message.Should().StartWith("AWS_ENDPOINT_URL:");
    }

    // --- the files themselves ---

    [Fact]
    public void A_file_a_variable_names_that_does_not_exist_is_an_error_naming_variable_and_file()
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        _env["AWS_CONFIG_FILE"] = "/no/such/config";
        Fails().Message.Should().Be("AWS_CONFIG_FILE names the config file /no/such/config, which does not exist");
        _env.Remove("AWS_CONFIG_FILE");
        _env["AWS_SHARED_CREDENTIALS_FILE"] = "/no/such/credentials";
        Fails().Message.Should().Be("AWS_SHARED_CREDENTIALS_FILE names the credentials file /no/such/credentials, which does not exist");
    }

    [Theory]
    [InlineData(CredentialsPath, "credentials")]
    [InlineData(ConfigPath, "config")]
    public void An_unreadable_file_is_an_error_naming_it(string path, string kind)
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        _files[path] = "[default]\n";
        _unreadable.Add(path);
        Fails().Message.Should().StartWith($"the {kind} file {path} cannot be read");
    }

    [Theory]
    [InlineData("[default\naws_access_key_id = K", 1, "must end with ']'")]
    [InlineData("[]\n", 1, "empty section name")]
    [InlineData("aws_access_key_id = K\n[default]", 1, "before the first [section]")]
    [InlineData("[default]\n" + Secret, 2, "not a 'key = value' line")]
    [InlineData("[default]\n= " + Secret, 2, "a value without a key")]
    [InlineData("[default]\naws_access_key_id = K\n  " + Secret, 3, "continues a value")]
    [InlineData("[default]\naws_access_key_id = K\naws_access_key_id = K2", 3, "appears a second time")]
    [InlineData("[default]\naws_access_key_id = K\n[default]\n", 3, "appears a second time")]
    public void A_malformed_credentials_file_names_file_and_line_but_not_the_line(string text, int line, string message)
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Credentials(text);
        var e = Fails(); // even with environment keys: the file is there, and wrong
        e.Message.Should().StartWith($"the credentials file {CredentialsPath}, line {line}: ").And.Contain(message);
    }

    [Fact]
    public void Default_and_profile_default_in_the_config_are_the_same_profile_given_twice()
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        Config("[default]\nregion = a\n[profile default]\nregion = b\n");
        Fails().Message.Should().Contain(ConfigPath).And.Contain("line 3").And.Contain("profile 'default' appears a second time");
    }

    [Fact]
    public void Config_sections_that_are_not_profiles_are_skipped_and_a_bare_name_is_not_a_profile()
    {
        EnvKeys();
        _env["AWS_PROFILE"] = "dev";
        Config("[sso-session corp]\nsso_start_url = https://x\n[services s]\ns3 =\n  endpoint_url = http://services\n[dev]\nendpoint_url = http://bare\n[profile dev]\nendpoint_url = http://dev\n");
        Resolve().Endpoint.Should().Be("http://dev");
        Config("[dev]\nendpoint_url = http://bare\n");
        Fails().Message.Should().Contain("profile 'dev'").And.Contain("does not exist");
    }

    [Fact]
    public void A_bad_profile_name_is_refused()
    {
        EnvKeys();
        Fails(profile: " padded").Message.Should().Contain("not a profile name");
        Fails(profile: "a]b").Message.Should().Contain("not a profile name");
    }

    [Fact]
    public void No_home_and_no_file_variables_means_no_files()
    {
        EnvKeys();
        _env["AWS_ENDPOINT_URL"] = "http://e";
        var sources = Sources with { Home = null };
        S3Settings.Resolve(new S3Overrides(), sources).AccessKey.Should().Be("ENVKEY");
        _env.Remove("AWS_ACCESS_KEY_ID");
        _env.Remove("AWS_SECRET_ACCESS_KEY");
        Assert.Throws<ArgumentException>(() => S3Settings.Resolve(new S3Overrides(), sources)).Message.Should().Contain("~/.aws/credentials");
    }

    // --- printing ---

    [Fact]
    public void ToString_never_shows_the_secret_or_the_token()
    {
        Credentials($"[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = {Secret}\naws_session_token = SESSIONTOKEN\n");
        Config("[default]\nendpoint_url = http://rgw:7480\n");
        string text = Resolve().ToString();
        text.Should().NotContain(Secret).And.NotContain("SESSIONTOKEN").And.NotContain("FILEKEY");
        text.Should().Be($"S3Settings {{ Endpoint = http://rgw:7480, Region = us-east-1, Credentials = profile 'default' in {CredentialsPath} }}");
        $"{new S3Settings("http://e", "K", Secret, "r") { SessionToken = "SESSIONTOKEN" }}".Should().NotContain(Secret).And.NotContain("SESSIONTOKEN");
    }
}
