using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Integration.Tests;

/// <summary>The drive record is read from a snapshot file: hostile input, checked before anything is opened.</summary>
public sealed class DriveRecordTests
{
    private static readonly DriveRecord Sample = new(1, 1 << 30, 65536, 0x1234_5678_9abc_def0, 4096, "vm.mvs.drive1");

    [Fact]
    public void A_record_round_trips_through_its_section()
    {
        var section = Sample.ToSection();
        section.Id.Should().Be("drive1");
        DriveRecord.IsDriveSection(section.Id).Should().BeTrue();
        DriveRecord.FromSection(section).Should().Be(Sample);
        DriveRecord.Of([new StateSection("vcpu0.regs", 1, []), section]).Should().Equal(Sample);
    }

    [Theory]
    [InlineData("../etc/shadow")]
    [InlineData("/etc/shadow")]
    [InlineData("..")]
    [InlineData("")]
    public void A_record_naming_anything_but_a_file_in_the_snapshots_directory_is_refused(string name)
    {
        var act = () => DriveRecord.FromSection((Sample with { File = name }).ToSection());
        act.Should().Throw<StateRestoreException>().WithMessage("*file name in the snapshot's directory*");
    }

    [Fact]
    public void Truncated_mislabelled_or_inconsistent_records_are_refused()
    {
        var good = Sample.ToSection();
        var truncated = good with { Data = good.Data[..^3] };
        FluentActions.Invoking(() => DriveRecord.FromSection(truncated)).Should().Throw<StateRestoreException>();
        FluentActions.Invoking(() => DriveRecord.FromSection(good with { Id = "drive7" })).Should().Throw<StateRestoreException>().WithMessage("*records drive 1*");
        FluentActions.Invoking(() => DriveRecord.FromSection(good with { Version = 9 })).Should().Throw<StateRestoreException>().WithMessage("*version 9*");
        FluentActions.Invoking(() => DriveRecord.FromSection((Sample with { BytesStored = Sample.Length + 1 }).ToSection())).Should().Throw<StateRestoreException>();
        FluentActions.Invoking(() => DriveRecord.FromSection((Sample with { BlockSize = 1000 }).ToSection())).Should().Throw<StateRestoreException>();
        DriveRecord.IsDriveSection("drives").Should().BeFalse();
        DriveRecord.IsDriveSection("drive").Should().BeFalse();
    }

    [Fact]
    public void A_links_record_carries_its_stored_block_bitmap_and_a_hostile_one_is_refused()
    {
        // 1 GiB in 4 KiB pages: 262144 pages, 4096 words.
        var stored = new ulong[4096];
        stored[0] = 0b1011;
        stored[4095] = 1UL << 63;
        var link = Sample with { StoredPages = stored };
        var section = link.ToSection();
        section.Version.Should().Be(DriveRecord.LinkVersion);
        var back = DriveRecord.FromSection(section);
        back.IsLink.Should().BeTrue();
        back.StoredPages.Should().Equal(stored);
        back.HoldsPage(3).Should().BeTrue();
        back.HoldsPage(2).Should().BeFalse();
        back.HoldsPage(262143).Should().BeTrue();
        back.PagesHeld.Should().Be(4);
        (back with { StoredPages = null }).Should().Be(Sample);
        Sample.ToSection().Version.Should().Be(DriveRecord.Version, "a full capture keeps the first version");

        var shortBitmap = section with { Data = section.Data[..^8] };
        FluentActions.Invoking(() => DriveRecord.FromSection(shortBitmap)).Should().Throw<StateRestoreException>().WithMessage("*bitmap*");
        var odd = new DriveRecord(0, 4096 * 3, 65536, 1, 0, "x.drive0", [0b1000]); // page 3 of a 3-page drive
        FluentActions.Invoking(() => DriveRecord.FromSection(odd.ToSection())).Should().Throw<StateRestoreException>().WithMessage("*past the drive's end*");
        var v1WithTail = Sample.ToSection() is var v1 ? v1 with { Data = [.. v1.Data, 0, 0, 0, 0] } : null;
        FluentActions.Invoking(() => DriveRecord.FromSection(v1WithTail!)).Should().Throw<StateRestoreException>();
    }
}
